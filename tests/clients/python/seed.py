# The seed's Python client example (SEED.md, "Usage Examples"), unmodified but for
# the server URL, plus instrumentation lines for the test. It runs until the test
# closes its standard input (or is gone), however long the test takes.
import json
import os
import sys

URL = os.environ["HOOKVAULT_URL"]


def report(kind, data):
    print(json.dumps({"kind": kind, "data": data}), flush=True)


# ---- seed example ----
import socketio
import requests

# Connect to WebSocket
sio = socketio.Client()

@sio.on('workflow-job')
def on_workflow_job(data):
    print(f"Job {data['job']['name']} is {data['action']}", flush=True)

@sio.on('security-alert')
def on_security_alert(data):
    print(f"SECURITY ALERT: {data['eventType']} in {data['repository']['full_name']}", flush=True)

# Connect
sio.connect(URL)

# Subscribe to repository
sio.emit('subscribe:repository', 'myorg/myrepo')

# Check webhook statistics
response = requests.get(f'{URL}/api/webhooks/statistics?hours=1')
stats = response.json()
print(f"Success rate: {stats['data']['summary']['successRate']}%", flush=True)
# ---- end of seed example ----

# Same subscription again, asking for the server's acknowledgement: the test starts
# sending once it is in place.
sio.call('subscribe:repository', 'myorg/myrepo')
report("ready", sio.sid)
sys.stdin.read()
sio.disconnect()
sys.exit(0)
