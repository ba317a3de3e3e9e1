"""Order placed: mail the customer without making them wait, then check it went out.

    CELERIAC_URL=http://127.0.0.1:8787 CELERIAC_API_KEY=celeriac-dev-key-change-me \\
      python3 examples/python/order_notification.py 1234 ada@example.com
"""
import sys

from celeriac_api import Celeriac, CeleriacError


def notify_order_placed(celeriac, order_id, email):
    # One email per order, however often this runs: the key makes a repeat answer the first task.
    return celeriac.enqueue(
        "send-email",
        {"to": email, "subject": f"Order #{order_id} placed", "text": f"Thanks! Your order #{order_id} is on its way."},
        idempotency_key=f"order-placed-{order_id}",
    )


def main():
    order_id, email = sys.argv[1], sys.argv[2]
    celeriac = Celeriac()
    queued = notify_order_placed(celeriac, order_id, email)
    print(f"enqueued {queued['id']} ({queued['state']})")
    again = notify_order_placed(celeriac, order_id, email)
    print(f"enqueued again: {again['id']} (duplicate: {str(again['duplicate']).lower()})")
    done = celeriac.wait(queued["id"], timeout=30)
    print(f"{done['id']} {done['state']} after {done['attempts']} attempt(s): email {done['result']['emailId']}")
    try:
        celeriac.enqueue("send-email", {"to": "not an address", "subject": "x", "text": "x"})
    except CeleriacError as err:
        print(f"refused: {err.status} {err.code}: {err.issues[0]['path']}: {err.issues[0]['message']}")


if __name__ == "__main__":
    main()
