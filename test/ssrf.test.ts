// The SSRF guard of the webhook task: which hosts are refused and why, numeric spellings of
// loopback and private addresses, and the CELERIAC_WEBHOOK_ALLOW_HOSTS allow-list.
import { describe, expect, it } from "vitest";
import { classifyAddress, classifyHost, isAllowed, parseTarget, refuseTarget } from "../src/ssrf.ts";

const LOOPBACK = "a loopback address";
const PRIVATE = "a private network address";
const LINK_LOCAL = "a link-local address";
const METADATA = "a cloud metadata endpoint";
const RESERVED = "a reserved address";
const MULTICAST = "a multicast address";

describe("classifyHost", () => {
  const refused: [string, string][] = [
    // loopback, in every spelling the URL parser normalises
    ["127.0.0.1", LOOPBACK],
    ["127.0.0.2", LOOPBACK],
    ["127.255.255.254", LOOPBACK],
    ["2130706433", LOOPBACK],
    ["0x7f.1", LOOPBACK],
    ["0x7f000001", LOOPBACK],
    ["0177.0.0.1", LOOPBACK],
    ["127.1", LOOPBACK],
    ["127.0.0.1.", LOOPBACK],
    ["%31%32%37.0.0.1", LOOPBACK],
    ["localhost", LOOPBACK],
    ["LOCALHOST.", LOOPBACK],
    ["api.localhost", LOOPBACK],
    ["::1", LOOPBACK],
    ["[::1]", LOOPBACK],
    ["[0:0:0:0:0:0:0:1]", LOOPBACK],
    // private, CGNAT, this-network
    ["10.0.0.5", PRIVATE],
    ["10.255.255.255", PRIVATE],
    ["172.16.0.1", PRIVATE],
    ["172.31.255.255", PRIVATE],
    ["192.168.1.1", PRIVATE],
    ["0xc0a80101", PRIVATE],
    ["100.64.0.1", "a carrier-grade NAT address"],
    ["100.127.255.255", "a carrier-grade NAT address"],
    ["0.0.0.0", "an unspecified (this-network) address"],
    ["0", "an unspecified (this-network) address"],
    ["0.1.2.3", "an unspecified (this-network) address"],
    // link-local and metadata
    ["169.254.1.1", LINK_LOCAL],
    ["169.254.169.254", METADATA],
    ["0xa9fea9fe", METADATA],
    ["metadata", METADATA],
    ["metadata.google.internal", METADATA],
    ["METADATA.google.internal.", METADATA],
    ["instance-data.ec2.internal", "an internal name"],
    ["printer.local", "a local-network (mDNS) name"],
    // multicast and reserved
    ["224.0.0.1", MULTICAST],
    ["239.255.255.250", MULTICAST],
    ["255.255.255.255", RESERVED],
    ["240.0.0.1", RESERVED],
    ["192.0.2.10", RESERVED],
    ["198.18.0.1", RESERVED],
    // IPv6
    ["::", "an unspecified address"],
    ["fc00::1", PRIVATE],
    ["fd12:3456:789a::1", PRIVATE],
    ["fd00:ec2::254", PRIVATE],
    ["fe80::1", LINK_LOCAL],
    ["febf:ffff::1", LINK_LOCAL],
    ["fec0::1", PRIVATE],
    ["ff02::1", MULTICAST],
    ["2001:db8::1", RESERVED],
    // IPv4 inside IPv6
    ["::ffff:127.0.0.1", `${LOOPBACK} (IPv4 127.0.0.1 inside IPv6)`],
    ["[::ffff:7f00:1]", `${LOOPBACK} (IPv4 127.0.0.1 inside IPv6)`],
    ["::ffff:10.0.0.1", `${PRIVATE} (IPv4 10.0.0.1 inside IPv6)`],
    ["::ffff:169.254.169.254", `${METADATA} (IPv4 169.254.169.254 inside IPv6)`],
    ["::127.0.0.1", `${LOOPBACK} (IPv4 127.0.0.1 inside IPv6)`],
    ["64:ff9b::192.168.0.1", `${PRIVATE} (IPv4 192.168.0.1 inside IPv6)`],
    ["2002:7f00:1::", `${LOOPBACK} (IPv4 127.0.0.1 inside IPv6)`],
    // issue 15: spellings that got through
    ["[::ffff:0:127.0.0.1]", `${LOOPBACK} (IPv4 127.0.0.1 inside IPv6)`],
    ["[::ffff:0:a00:1]", `${PRIVATE} (IPv4 10.0.0.1 inside IPv6)`],
    ["[64:ff9b:1::7f00:1]", "a local-use NAT64 address"],
    ["localhost..", LOOPBACK],
    ["127.0.0.1..", LOOPBACK],
    ["127.0.0.1...", LOOPBACK],
    ["localhost.localdomain", LOOPBACK],
    ["instance-data", METADATA],
    ["intranet", "a single-label name (resolved only inside a private network)"],
    ["router.home.arpa", "a home-network name"],
    ["[100::1]", RESERVED],
    ["[2001:0:4136:e378:8000:63bf:3fff:fdd2]", "a Teredo tunnel address"],
    // not a host at all
    ["1.2.3.4.5", "not a valid host"],
    ["256.0.0.1", "not a valid host"],
    ["", "not a valid host"],
  ];
  it.each(refused)("refuses %s as %s", (host, why) => {
    expect(classifyHost(host)).toBe(why);
  });

  const allowed = [
    "93.184.216.34",
    "8.8.8.8",
    "1.1.1.1",
    "172.15.255.255",
    "172.32.0.1",
    "100.63.255.255",
    "100.128.0.1",
    "169.253.255.255",
    "192.169.0.1",
    "223.255.255.255",
    "example.com",
    "EXAMPLE.com.",
    "hooks.slack.com",
    "localhost.example.com",
    "internal.example.com",
    "bücher.example",
    "[2606:4700::1]",
    "2606:4700:4700::1111",
    "2a00:1450:4001:80b::200e",
    "::ffff:8.8.8.8",
    "64:ff9b::93.184.216.34",
    "fbff::1",
  ];
  it.each(allowed)("allows the public host %s", (host) => {
    expect(classifyHost(host)).toBeUndefined();
  });
});

describe("classifyAddress (what a resolver returned)", () => {
  it.each([
    ["127.0.0.1", LOOPBACK],
    ["::1", LOOPBACK],
    ["::ffff:127.0.0.1", `${LOOPBACK} (IPv4 127.0.0.1 inside IPv6)`],
    ["fe80::1%eth0", LINK_LOCAL],
    ["10.1.2.3", PRIVATE],
    ["localhost", "not an IP address"],
  ])("refuses %s as %s", (ip, why) => expect(classifyAddress(ip)).toBe(why));
  it.each(["8.8.8.8", "2606:4700::1111"])("allows %s", (ip) => expect(classifyAddress(ip)).toBeUndefined());
});

describe("parseTarget", () => {
  it("accepts http and https URLs", () => {
    const url = parseTarget("https://Example.com:8443/a?b=1");
    expect(url).toBeInstanceOf(URL);
    expect((url as URL).host).toBe("example.com:8443");
    expect(parseTarget("http://example.com")).toBeInstanceOf(URL);
  });
  it.each([
    ["ftp://example.com/file", "uses ftp: (only http and https)"],
    ["file:///etc/passwd", "uses file: (only http and https)"],
    ["javascript:alert(1)", "uses javascript: (only http and https)"],
    ["gopher://127.0.0.1:6379/_", "uses gopher: (only http and https)"],
    ["http://user:pw@example.com/", "must not contain credentials (send an authorization header instead)"],
    ["http://user@example.com/", "must not contain credentials (send an authorization header instead)"],
    ["example.com/hook", "is not a valid absolute URL"],
    ["http://", "is not a valid absolute URL"],
    ["http://1.2.3.4.5/", "is not a valid absolute URL"],
  ])("refuses %s", (raw, why) => {
    expect(parseTarget(raw)).toBe(why);
  });
});

describe("refuseTarget", () => {
  it("says what the host is and how to allow it", () => {
    expect(refuseTarget("http://127.0.0.1:8080/hook", [])).toBe(
      "refused: 127.0.0.1 is a loopback address; add it to CELERIAC_WEBHOOK_ALLOW_HOSTS to allow it",
    );
    expect(refuseTarget("http://0x7f.1/hook", [])).toBe(
      "refused: 127.0.0.1 is a loopback address; add it to CELERIAC_WEBHOOK_ALLOW_HOSTS to allow it",
    );
    expect(refuseTarget("http://[::ffff:a9fe:a9fe]/", [])).toBe(
      `refused: [::ffff:a9fe:a9fe] is ${METADATA} (IPv4 169.254.169.254 inside IPv6); add it to CELERIAC_WEBHOOK_ALLOW_HOSTS to allow it`,
    );
    expect(refuseTarget("http://example.com@10.1.2.3/", [])).toBe(
      "refused: the URL must not contain credentials (send an authorization header instead)",
    );
    expect(refuseTarget("ftp://example.com/", [])).toBe("refused: the URL uses ftp: (only http and https)");
  });

  it("lets public targets through", () => {
    for (const url of ["https://93.184.216.34/", "https://example.com/hook?x=1", "http://[2606:4700::1]:8080/"]) {
      expect(refuseTarget(url, [])).toBeUndefined();
    }
  });

  it("lets an allow-listed host through, and only that host", () => {
    const allow = ["127.0.0.1"];
    expect(refuseTarget("http://127.0.0.1:8080/hook", allow)).toBeUndefined();
    expect(refuseTarget("https://127.0.0.1/hook", allow)).toBeUndefined();
    // Another spelling of the same address is the same host.
    expect(refuseTarget("http://2130706433:8080/", allow)).toBeUndefined();
    // Other loopback hosts are not.
    expect(refuseTarget("http://127.0.0.2:8080/", allow)).toMatch(/^refused: 127\.0\.0\.2 is a loopback address/);
    expect(refuseTarget("http://localhost:8080/", allow)).toMatch(/^refused: localhost is a loopback address/);
    expect(refuseTarget("http://[::1]:8080/", allow)).toMatch(/^refused: \[::1\] is a loopback address/);
    expect(refuseTarget("http://[::ffff:127.0.0.1]:8080/", allow)).toMatch(/^refused: \[::ffff:7f00:1\] is a loopback address/);
    // A prefix is not a match.
    expect(refuseTarget("http://10.0.0.50/", ["10.0.0.5"])).toMatch(/^refused: 10\.0\.0\.50 is a private/);
    expect(refuseTarget("http://10.0.0.5/", ["10.0.0.5"])).toBeUndefined();
  });
});

describe("isAllowed", () => {
  const u = (s: string) => new URL(s);
  it("matches a host on any port, or host:port on that port only", () => {
    expect(isAllowed(u("http://127.0.0.1:8080/"), ["127.0.0.1:8080"])).toBe(true);
    expect(isAllowed(u("http://127.0.0.1:8081/"), ["127.0.0.1:8080"])).toBe(false);
    expect(isAllowed(u("http://127.0.0.1/"), ["127.0.0.1:8080"])).toBe(false);
    // The scheme's default port counts when the URL names none.
    expect(isAllowed(u("http://localhost/"), ["localhost:80"])).toBe(true);
    expect(isAllowed(u("https://localhost/"), ["localhost:80"])).toBe(false);
    expect(isAllowed(u("https://localhost/"), ["localhost:443"])).toBe(true);
    expect(isAllowed(u("http://localhost:9999/"), ["localhost"])).toBe(true);
  });
  it("compares normalised hosts", () => {
    expect(isAllowed(u("http://localhost./"), ["localhost"])).toBe(true);
    expect(isAllowed(u("http://metadata.google.internal/"), ["metadata.google.internal"])).toBe(true);
    expect(isAllowed(u("http://[::1]:3000/"), ["::1"])).toBe(true);
    expect(isAllowed(u("http://[::1]:3000/"), ["[::1]:3000"])).toBe(true);
    expect(isAllowed(u("http://[::1]:3001/"), ["[::1]:3000"])).toBe(false);
    expect(isAllowed(u("http://[::1]/"), ["0:0:0:0:0:0:0:1"])).toBe(true);
    expect(isAllowed(u("http://api.localhost/"), ["localhost"])).toBe(false);
    expect(isAllowed(u("http://10.0.0.5/"), [])).toBe(false);
    expect(isAllowed(u("http://10.0.0.5/"), ["10.0.0.6", "10.0.0.5"])).toBe(true);
  });
});
