"""Where botocore sends ECR, ECR Public and STS requests, without loading its 1.25 MB of endpoint rules.

The answers are botocore's (1.44), read off `client.meta.endpoint_url` for every region of every partition,
each with and without FIPS and dual-stack, and for unknown regions that match a partition's pattern;
tests/test_aws_fast.py compares every one with the installed botocore, so an upgrade that moves an endpoint
fails there. Anything this table does not know answers None, and the caller goes to botocore: the global
pseudo-regions, a region no partition's pattern matches, dual-stack in the iso-e and iso-f partitions (botocore
raises there), a configured endpoint URL together with FIPS or dual-stack (botocore raises), an endpoint URL
with a path, a query or user info.
"""

from __future__ import annotations

import os

# (partition, region pattern, DNS suffix, dual-stack suffix as ECR's rules use it; "" = botocore raises),
# in partitions.json order, which is the order botocore tries the patterns in
PARTITIONS = (
    ("aws", r"^(us|eu|ap|sa|ca|me|af|il|mx)\-\w+\-\d+$", "amazonaws.com", "api.aws"),
    ("aws-cn", r"^cn\-\w+\-\d+$", "amazonaws.com.cn", "api.amazonwebservices.com.cn"),
    ("aws-eusc", r"^eusc\-(de)\-\w+\-\d+$", "amazonaws.eu", "api.amazonwebservices.eu"),
    ("aws-iso", r"^us\-iso\-\w+\-\d+$", "c2s.ic.gov", "api.aws"),
    ("aws-iso-b", r"^us\-isob\-\w+\-\d+$", "sc2s.sgov.gov", "api.aws"),
    ("aws-iso-e", r"^eu\-isoe\-\w+\-\d+$", "cloud.adc-e.uk", ""),
    ("aws-iso-f", r"^us\-isof\-\w+\-\d+$", "csp.hci.ic.gov", ""),
    ("aws-us-gov", r"^us\-gov\-\w+\-\d+$", "amazonaws.com", "api.aws"),
)
# ECR's rules name these regions one by one; every other region takes the partition's general form.
ECR_DUALSTACK_SHORT = frozenset({  # dual-stack without FIPS: ecr.<region>.<suffix>, not api.ecr.<region>.<suffix>
    "af-south-1", "ap-east-1", "ap-northeast-1", "ap-northeast-2", "ap-northeast-3", "ap-south-1", "ap-south-2",
    "ap-southeast-1", "ap-southeast-2", "ap-southeast-3", "ap-southeast-4", "ap-southeast-5", "ap-southeast-7",
    "ca-central-1", "ca-west-1", "eu-central-1", "eu-central-2", "eu-north-1", "eu-south-1", "eu-south-2",
    "eu-west-1", "eu-west-2", "eu-west-3", "il-central-1", "me-central-1", "me-south-1", "mx-central-1",
    "sa-east-1", "us-east-1", "us-east-2", "us-gov-east-1", "us-gov-west-1", "us-west-1", "us-west-2",
    "cn-north-1", "cn-northwest-1",
})
ECR_FIPS_DUALSTACK_SHORT = frozenset({  # FIPS and dual-stack: ecr-fips.<region>.api.aws
    "us-east-1", "us-east-2", "us-west-1", "us-west-2", "us-gov-east-1", "us-gov-west-1",
})
SERVICE_ENV = {"ecr": "AWS_ENDPOINT_URL_ECR", "ecr-public": "AWS_ENDPOINT_URL_ECR_PUBLIC",
               "sts": "AWS_ENDPOINT_URL_STS"}  # AWS_ENDPOINT_URL_ + the service id, upper case, "_" for " "


def partition(region: str) -> tuple[str, str, str] | None:
    """(name, DNS suffix, dual-stack suffix) of the partition whose pattern `region` matches, or None."""
    import re

    for name, pattern, suffix, dual in PARTITIONS:
        if re.match(pattern, region):
            return name, suffix, dual
    return None


def ecr_url(region: str, fips: bool, dualstack: bool) -> str | None:
    """botocore's ECR endpoint for `region` with these flags, or None where this module does not know it."""
    found = partition(region)
    if found is None:
        return None
    name, suffix, dual = found
    if dualstack and not dual:
        return None
    if not fips and not dualstack:
        return f"https://api.ecr.{region}.{suffix}"
    plain = name in ("aws", "aws-us-gov")  # the commercial and GovCloud partitions drop the `api.` of FIPS
    if fips and not dualstack:
        return f"https://ecr-fips.{region}.amazonaws.com" if plain else f"https://api.ecr-fips.{region}.{suffix}"
    if not fips:
        return f"https://ecr.{region}.{dual}" if region in ECR_DUALSTACK_SHORT else f"https://api.ecr.{region}.{dual}"
    return (f"https://ecr-fips.{region}.{dual}" if region in ECR_FIPS_DUALSTACK_SHORT
            else f"https://api.ecr-fips.{region}.{dual}")


def sts_url(region: str) -> str | None:
    """botocore's STS endpoint for `region` (regional endpoints, botocore's default; no FIPS, no dual-stack:
    the web identity provider's STS client takes neither from the ECR client's configuration)."""
    found = partition(region)
    return None if found is None else f"https://sts.{region}.{found[1]}"


def configured(service: str) -> str | None:
    """The endpoint URL the environment sets for `service` (AWS_ENDPOINT_URL_<ID>, then AWS_ENDPOINT_URL; none
    when AWS_IGNORE_CONFIGURED_ENDPOINT_URLS is true), "" when none does, None when its form is one this module
    does not send itself (a path, a query, user info, another scheme: botocore's)."""
    if os.environ.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").lower() == "true":
        return ""
    url = os.environ.get(SERVICE_ENV[service])
    if url is None:
        url = os.environ.get("AWS_ENDPOINT_URL")
    if url is None:
        return ""
    scheme, sep, rest = url.partition("://")
    rest = rest[:-1] if rest.endswith("/") else rest
    if not sep or scheme not in ("http", "https") or not rest or any(c in rest for c in "/?#@ \\"):
        return None
    return f"{scheme}://{rest}"


def url_for(service: str, region: str, fips: bool = False, dualstack: bool = False) -> str | None:
    """The endpoint botocore's `service` client in `region` sends to, or None: then botocore must decide."""
    custom = configured(service)
    if custom is None or (custom and (fips or dualstack)):
        return None  # botocore: "Invalid Configuration: FIPS and custom endpoint are not supported"
    if custom:
        return custom
    if service == "ecr":
        return ecr_url(region, fips, dualstack)
    if service == "sts":
        return sts_url(region)
    return "https://api.ecr-public.us-east-1.amazonaws.com" if region == "us-east-1" and not fips \
        and not dualstack else None
