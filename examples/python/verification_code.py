"""Verification codes from a Python backend: mail a code, then check the one the person typed.

    export CELERIAC_URL=http://127.0.0.1:8787 CELERIAC_API_KEY=celeriac-dev-key-change-me
    python3 examples/python/verification_code.py request ada@example.com sign-in
    python3 examples/python/verification_code.py check ada@example.com sign-in 123456

`check` verifies the token celeriac answers (an HS256 JWT) with VERIFICATION_TOKEN_SECRET, using
hmac from the standard library, as your backend would before trusting it.
"""
import base64
import hashlib
import hmac
import json
import os
import sys
import time

from celeriac_api import Celeriac, CeleriacError


def b64url_decode(part):
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def verify_token(token, secret, purpose):
    """The claims of a celeriac verification token, or ValueError when it must not be trusted."""
    header, payload, signature = token.split(".")
    if json.loads(b64url_decode(header)).get("alg") != "HS256":
        raise ValueError("not an HS256 token")
    expected = hmac.new(secret.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(expected, b64url_decode(signature)):
        raise ValueError("bad signature")
    claims = json.loads(b64url_decode(payload))
    if claims.get("iss") != "celeriac" or claims.get("purpose") != purpose or claims["exp"] < time.time():
        raise ValueError("expired, or for another purpose")
    return claims


def main():
    command, email, purpose = sys.argv[1:4]
    celeriac = Celeriac()
    if command == "request":
        queued = celeriac.enqueue("verification", {"email": email, "purpose": purpose})
        done = celeriac.wait(queued["id"], timeout=30)
        print(f"code for {email} ({purpose}): {done['state']}")
        return 0
    try:
        answer = celeriac.check_code(email, purpose, sys.argv[4])
    except CeleriacError as err:
        left = err.body.get("triesLeft")
        print(f"not verified: {err.code}" + (f", {left} tries left" if left is not None else ""))
        return 1
    claims = verify_token(answer["token"], os.environ["VERIFICATION_TOKEN_SECRET"], purpose)
    print(f"verified {claims['sub']} for {claims['purpose']}, token valid for {claims['exp'] - int(time.time())} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
