"""Sends N signed dependabot_alert deliveries (the fixtures in turn), 8 at a time.
   python3 benches/realtime/send_alerts.py <url> <secret> <n>"""
import concurrent.futures, glob, hashlib, hmac, sys, urllib.request, uuid

url, secret, n = sys.argv[1], sys.argv[2].encode(), int(sys.argv[3])
bodies = [open(p, "rb").read() for p in sorted(glob.glob("fixtures/dependabot_alert/*.json"))]

def send(i):
    body = bodies[i % len(bodies)]
    request = urllib.request.Request(url + "/api/webhooks/github", data=body, method="POST", headers={
        "X-GitHub-Event": "dependabot_alert", "X-GitHub-Delivery": str(uuid.uuid4()),
        "User-Agent": "GitHub-Hookshot/bench", "Content-Type": "application/json",
        "X-Hub-Signature-256": "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()})
    return urllib.request.urlopen(request, timeout=60).status

with concurrent.futures.ThreadPoolExecutor(8) as pool:
    statuses = list(pool.map(send, range(n)))
bad = [s for s in statuses if s != 200]
if bad:
    sys.exit(f"{len(bad)} deliveries not acknowledged")
