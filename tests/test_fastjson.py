"""`fastjson` parses without importing `json`: every malformed document must still be a ValueError, in a process
where `json` was never imported (the C scanner then cannot build its own error and raised SystemError, which
reached users as "internal error" from a truncated kubelet request or a damaged cache entry)."""

from __future__ import annotations

import json
import math
import subprocess
import sys

from hypothesis import example, given
from hypothesis import strategies as st

from tests.conftest import ROOT

MALFORMED = ['{"a":1,}', "[1,2", '{"a":', "{'a':1}", '{"a":1', '"abc', '{"a":tru}', "[1,]", '{"a" 1}', "", "   ",
             '{"a":1} x', '{"kind":"CredentialProviderRequest","image":"x"', "\ufeff{}"]


def test_every_malformed_document_is_a_value_error_in_a_process_without_json() -> None:
    probe = ("import sys\nfrom helper import fastjson\nassert 'json' not in sys.modules\nout = []\n"
             "for text in sys.argv[1:]:\n"
             "    try:\n        fastjson.loads(text)\n        out.append('parsed')\n"
             "    except ValueError:\n        out.append('ValueError')\n"
             "    except Exception as exc:\n        out.append(type(exc).__name__)\n"
             "assert 'json' not in sys.modules, 'the error path imported json'\nprint(' '.join(out))\n")
    done = subprocess.run([sys.executable, "-c", probe, *MALFORMED], cwd=ROOT, capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["ValueError"] * len(MALFORMED)


def test_well_formed_documents_parse_as_json_parses_them() -> None:
    from helper import fastjson

    for text in ('{"a": [1, 2.5, "x\\u00e9", null, true]}', " [] ", '"s"', "0"):
        assert fastjson.loads(text) == json.loads(text)


SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.text(),
                    st.floats(allow_nan=False, allow_infinity=False))


@given(st.dictionaries(st.text(), SCALARS, max_size=8))
@example({"typ": "JWT", "alg": "RS256", "kid": "0123456789abcdef"})
@example({"iat": 1764518400, "exp": 1764522000, "iss": "sa@p.iam.gserviceaccount.com",
          "aud": "https://oauth2.googleapis.com/token", "scope": "https://www.googleapis.com/auth/cloud-platform"})
@example({"format": "docker-credential-switchboard/token/1", "secret": "é\u2028\x00\"\\", "expires_at": 1e300,
          "obtained_at": 0.1, "neg": -0.0, "big": 2**70})
def test_dumps_flat_is_json_dumps_text_for_flat_objects(doc: dict[str, object]) -> None:
    """The signed JWT header and claims (google_fast) and the token cache entry rely on this equality."""
    from helper import fastjson

    assert fastjson.dumps_flat(doc) == json.dumps(doc)


def test_dumps_flat_leaves_anything_else_to_json() -> None:
    from helper import fastjson

    for doc in ({"a": [1]}, {"a": {"b": 1}}, {"n": math.nan}, {"i": -math.inf}, {1: "x"}):
        assert fastjson.dumps_flat(doc) == json.dumps(doc)  # type: ignore[arg-type]
