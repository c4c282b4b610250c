"""The error classes botocore raises by name for ECR, ECR Public and STS: every error shape of their models.

A service's error answer whose code names one of its modeled shapes is raised by botocore as that shape's class
(`ServerException`), any other as `ClientError`; a not-found's logged reason names the class, so the fast path
(helper/backends/aws_http.py) names it the same way. Read off botocore 1.44's models; tests/test_aws_fast.py
compares them with `client.exceptions` of the installed botocore.
"""

from __future__ import annotations

_ECR = (
    "BlockedByOrganizationPolicyException", "EmptyUploadException", "ExclusionAlreadyExistsException",
    "ExclusionNotFoundException", "ImageAlreadyExistsException", "ImageArchivedException",
    "ImageDigestDoesNotMatchException", "ImageNotFoundException", "ImageStorageClassUpdateNotSupportedException",
    "ImageTagAlreadyExistsException", "InvalidLayerException", "InvalidLayerPartException",
    "InvalidParameterException", "InvalidTagParameterException", "KmsException", "LayerAlreadyExistsException",
    "LayerInaccessibleException", "LayerPartTooSmallException", "LayersNotFoundException",
    "LifecyclePolicyNotFoundException", "LifecyclePolicyPreviewInProgressException",
    "LifecyclePolicyPreviewNotFoundException", "LimitExceededException",
    "PullThroughCacheRuleAlreadyExistsException", "PullThroughCacheRuleNotFoundException",
    "ReferencedImagesNotFoundException", "RegistryPolicyNotFoundException",
    "ReplicationBackfillInProgressException", "ReplicationBackfillInvalidStatusException",
    "ReplicationBackfillNotFoundException", "RepositoryAlreadyExistsException", "RepositoryNotEmptyException",
    "RepositoryNotFoundException", "RepositoryPolicyNotFoundException", "ScanNotFoundException",
    "SecretNotFoundException", "ServerException", "SigningConfigurationNotFoundException",
    "TemplateAlreadyExistsException", "TemplateNotFoundException", "TooManyTagsException",
    "UnableToAccessSecretException", "UnableToDecryptSecretValueException", "UnableToGetUpstreamImageException",
    "UnableToGetUpstreamLayerException", "UnableToListUpstreamImageReferrersException",
    "UnsupportedImageTypeException", "UnsupportedUpstreamRegistryException", "UploadNotFoundException",
    "ValidationException",
)

_ECR_PUBLIC = (
    "EmptyUploadException", "ImageAlreadyExistsException", "ImageDigestDoesNotMatchException",
    "ImageNotFoundException", "ImageTagAlreadyExistsException", "InvalidLayerException",
    "InvalidLayerPartException", "InvalidParameterException", "InvalidTagParameterException",
    "LayerAlreadyExistsException", "LayerPartTooSmallException", "LayersNotFoundException",
    "LimitExceededException", "ReferencedImagesNotFoundException", "RegistryNotFoundException",
    "RepositoryAlreadyExistsException", "RepositoryCatalogDataNotFoundException", "RepositoryNotEmptyException",
    "RepositoryNotFoundException", "RepositoryPolicyNotFoundException", "ServerException", "TooManyTagsException",
    "UnsupportedCommandException", "UploadNotFoundException",
)

_STS = (
    "ExpiredTokenException", "ExpiredTradeInTokenException", "InvalidAuthorizationMessageException",
    "JWTPayloadSizeExceededException", "OutboundWebIdentityFederationDisabledException", "RegionDisabledException",
    "SessionDurationEscalationException",
)

_STS_RENAMED = {  # the error code -> the shape's (and class's) name
    "IDPCommunicationError": "IDPCommunicationErrorException",
    "IDPRejectedClaim": "IDPRejectedClaimException",
    "InsufficientSessionLifetime": "InsufficientSessionLifetimeException",
    "InvalidContextAssertion": "InvalidContextAssertionException",
    "InvalidIdentityToken": "InvalidIdentityTokenException",
    "InvalidSubjectCredentials": "InvalidSubjectCredentialsException",
    "MalformedPolicyDocument": "MalformedPolicyDocumentException",
    "PackedPolicyTooLarge": "PackedPolicyTooLargeException",
}

MODELED: dict[str, dict[str, str]] = {
    "ecr": {name: name for name in _ECR},
    "ecr-public": {name: name for name in _ECR_PUBLIC},
    "sts": {**{name: name for name in _STS}, **_STS_RENAMED},
}


def class_name(service: str, code: str) -> str:
    """The name of the class botocore raises for `code` from `service`."""
    return MODELED[service].get(code, "ClientError")
