#!/usr/bin/env python3
"""Verify recorded webhook requests with libraries that are not Hookline's:
the Standard Webhooks library from PyPI (standardwebhooks) for
webhook-signature, and Python's hmac for X-Hub-Signature-256 the way
GitHub documents it (keyed with the secret string).

    verify_signatures.py DUMP SECRETS

DUMP is https_receiver.py's --dump (one request per line: path, headers,
base64 body); SECRETS a JSON object from path prefix to the whsec_ secret
as the API handed it out. A gzipped request (Content-Encoding: gzip) is
checked as docs/receiving.md says: X-Hub-Signature-256 and the first
webhook-signature over the bytes as received, and the Standard Webhooks
library on the decompressed JSON. A tampered copy of every request must
fail. Exit 1 with every problem listed.
"""

import base64
import gzip
import hashlib
import hmac
import json
import sys

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


def main():
    dump, secrets_file = sys.argv[1:3]
    secrets = json.load(open(secrets_file))
    problems, checked, gzipped = [], 0, 0
    for line in open(dump):
        req = json.loads(line)
        path, headers, body = req["path"], req["headers"], base64.b64decode(req["body"])
        secret = next((s for p, s in secrets.items() if path.startswith(p)), None)
        if secret is None:
            problems.append(f"{path}: no secret for this path")
            continue
        wh = Webhook(secret)
        json_body = body
        if headers.get("content-encoding") == "gzip":
            gzipped += 1
            json_body = gzip.decompress(body)
        # Standard Webhooks, as a receiver using the library does.
        try:
            wh.verify(json_body, headers)
        except WebhookVerificationError as e:
            problems.append(f"{path} {headers.get('webhook-id')}: standardwebhooks: {e}")
        # The same, by hand, on the bytes as received: the first signature.
        key = base64.b64decode(secret.removeprefix("whsec_"))
        signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
        want = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
        if want not in headers["webhook-signature"].split(" "):
            problems.append(f"{path} {headers.get('webhook-id')}: no signature over the bytes as received")
        # GitHub style: HMAC keyed with the secret string, over the bytes as received.
        gh = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(gh, headers.get("x-hub-signature-256", "")):
            problems.append(f"{path} {headers.get('webhook-id')}: X-Hub-Signature-256 does not match")
        # A tampered body must not verify.
        try:
            wh.verify(json_body + b" ", headers)
            problems.append(f"{path}: a tampered body verified")
        except WebhookVerificationError:
            pass
        checked += 1
    for p in problems:
        print("  -", p, file=sys.stderr)
    print(f"python: {checked} requests ({gzipped} gzipped) checked, {len(problems)} problems", file=sys.stderr)
    sys.exit(1 if problems or checked == 0 else 0)


if __name__ == "__main__":
    main()
