"""A loopback stand-in for the ECR and ECR Public token APIs whose tokens carry a *current* expiry
(moto's are fixed in 2015, so they are never cached), and for Secrets Manager's GetSecretValue (moto cannot
count calls), counting every request. botocore reaches it
through AWS_ENDPOINT_URL, exactly as it would a real endpoint."""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from tests.loopback import Loopback, QuietHandler

ASSUME_ROLE_XML = """<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
<AssumeRoleResult><Credentials><AccessKeyId>ASIAROLEKEY</AccessKeyId><SecretAccessKey>role-secret</SecretAccessKey>
<SessionToken>role-session-token</SessionToken><Expiration>2099-01-01T00:00:00Z</Expiration></Credentials>
<AssumedRoleUser><AssumedRoleId>AROA:s</AssumedRoleId><Arn>arn:aws:sts::123456789012:assumed-role/r/s</Arn>
</AssumedRoleUser></AssumeRoleResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata>
</AssumeRoleResponse>"""


WEB_IDENTITY_XML = """<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
<AssumeRoleWithWebIdentityResult><Credentials><AccessKeyId>{key}</AccessKeyId>
<SecretAccessKey>web-secret</SecretAccessKey><SessionToken>web-session-token</SessionToken>
<Expiration>2099-01-01T00:00:00Z</Expiration></Credentials><SubjectFromWebIdentityToken>sub</SubjectFromWebIdentityToken>
<AssumedRoleUser><AssumedRoleId>AROA:w</AssumedRoleId><Arn>arn:aws:sts::123456789012:assumed-role/w/s</Arn>
</AssumedRoleUser></AssumeRoleWithWebIdentityResult><ResponseMetadata><RequestId>2</RequestId></ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>"""

ECR_HOST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"


def aws_env(url: str, base: Mapping[str, str] | None = None, **extra: str) -> dict[str, str]:
    """`base` (this process's environment by default) with static test keys and `url` as the AWS endpoint."""
    return dict(os.environ if base is None else base, AWS_ENDPOINT_URL=url, AWS_ACCESS_KEY_ID="testing",
                AWS_SECRET_ACCESS_KEY="testing-secret", AWS_REGION="us-east-1", **extra)


class FakeEcr(Loopback):
    """Answers GetAuthorizationToken for ecr and ecr-public, and GetSecretValue for secretsmanager.
    Tunables: lifetime, delay, mode, secret_string."""

    def __init__(self, tls: tuple[Path, Path] | None = None) -> None:
        self.lifetime = 12 * 3600.0
        #: what GetSecretValue answers as SecretString
        self.secret_string = json.dumps({"username": "fleet-robot", "password": "fleet-secret"})
        #: the SecretId of each GetSecretValue call, and when it arrived (time.monotonic())
        self.secret_ids: list[str] = []
        self.secret_times: list[float] = []
        self.delay = 0.0
        self.mode = "ok"  # ok | 500 | garbage | denied
        self.requests: list[str] = []
        #: the access key id that signed each request (from the SigV4 Authorization header)
        self.key_ids: list[str] = []
        #: the form fields of each STS AssumeRole call
        self.assume_role_calls: list[dict[str, str]] = []
        #: the role names of each STS AssumeRoleWithWebIdentity call, and the form fields of each
        self.web_identity_roles: list[str] = []
        self.web_identity_calls: list[dict[str, str]] = []
        self._lock = threading.Lock()
        fake = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                # container credentials (/creds/NAME) and SSO's GetRoleCredentials: keys named after the
                # identity asked for, so that the ECR call shows which identity signed it
                from urllib.parse import parse_qs, urlsplit

                url = urlsplit(self.path)
                if url.path.startswith("/creds/"):
                    self._send(200, json.dumps({
                        "AccessKeyId": f"ASIACONTAINER{url.path[7:].upper()}", "SecretAccessKey": "c-secret",
                        "Token": "c-session", "Expiration": "2099-01-01T00:00:00Z"}).encode(), "application/json")
                elif url.path == "/federation/credentials":
                    query = parse_qs(url.query)
                    self._send(200, json.dumps({"roleCredentials": {
                        "accessKeyId": f"ASIASSO{query['account_id'][0]}{query['role_name'][0].upper()}",
                        "secretAccessKey": "s-secret", "sessionToken": "s-session",
                        "expiration": 4070908800000}}).encode(), "application/json")
                else:
                    self._send(404, b"{}")

            def do_POST(self) -> None:
                body = self.body()
                target = self.headers.get("X-Amz-Target", "")
                auth = self.headers.get("Authorization", "")
                key_id = auth.split("Credential=", 1)[1].split("/", 1)[0] if "Credential=" in auth else ""
                if b"Action=AssumeRoleWithWebIdentity" in body:
                    from urllib.parse import parse_qsl

                    form = dict(parse_qsl(body.decode()))
                    role = form["RoleArn"].rsplit("/", 1)[-1]
                    with fake._lock:
                        fake.web_identity_roles.append(role)
                        fake.web_identity_calls.append(form)
                    self._send(200, WEB_IDENTITY_XML.format(key=f"ASIAWEB{role.upper()}").encode(), "text/xml")
                    return
                if b"Action=AssumeRole" in body:
                    from urllib.parse import parse_qsl

                    with fake._lock:
                        fake.assume_role_calls.append(dict(parse_qsl(body.decode())))
                        fake.key_ids.append(key_id)
                    self._send(200, ASSUME_ROLE_XML.encode(), "text/xml")
                    return
                arrived = time.monotonic()
                with fake._lock:
                    fake.requests.append(target)
                    fake.key_ids.append(key_id)
                    serial = len(fake.requests)
                time.sleep(fake.delay)
                if fake.mode == "500":
                    self._send(500, b'{"__type":"ServerException","message":"boom"}')
                    return
                if fake.mode == "garbage":
                    self._send(200, b"<html>not json</html>")
                    return
                if fake.mode == "denied":
                    self._send(400, b'{"__type":"AccessDeniedException","message":"denied"}')
                    return
                if target == "secretsmanager.GetSecretValue":
                    secret_id = json.loads(body)["SecretId"]
                    with fake._lock:
                        fake.secret_ids.append(secret_id)
                        fake.secret_times.append(arrived)
                    self._send(200, json.dumps({
                        "ARN": f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{secret_id}-AbCdEf",
                        "Name": secret_id, "VersionId": f"v{serial}", "SecretString": fake.secret_string,
                        "VersionStages": ["AWSCURRENT"], "CreatedDate": time.time()}).encode())
                    return
                expires = time.time() + fake.lifetime
                token = base64.b64encode(f"AWS:token-{serial}".encode()).decode()
                if target.endswith("SpencerFrontendService.GetAuthorizationToken"):
                    answer: dict[str, object] = {"authorizationData": {"authorizationToken": token,
                                                                       "expiresAt": expires}}
                else:
                    ids = json.loads(body or b"{}").get("registryIds") or ["123456789012"]
                    answer = {"authorizationData": [{"authorizationToken": token, "expiresAt": expires,
                                                     "proxyEndpoint": f"https://{ids[0]}.dkr.ecr.example"}]}
                self._send(200, json.dumps(answer).encode())

            def _send(self, code: int, data: bytes, kind: str = "application/x-amz-json-1.1") -> None:
                self.send(code, data, kind)

        super().__init__(Handler, tls)

    def count(self, service: str = "") -> int:
        """Requests received so far (optionally only those whose target contains `service`)."""
        with self._lock:
            return sum(1 for target in self.requests if service in target)
