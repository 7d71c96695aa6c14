"""The Vertex AI Vizier v1 REST client: no Keras, no discovery at run time.

Example::

    from vizier_keras.client import VizierClient

    client = VizierClient("http://127.0.0.1:8080")    # or VizierClient(region="us-central1")
    studies = client.list_studies("projects/my-project/locations/us-central1")
"""

from vizier_keras.client._client import (
    CLOUD_PLATFORM_SCOPE,
    ENDPOINT_ENV,
    SuggestResult,
    VizierClient,
    endpoint_from_environment,
    vertex_endpoint,
)
from vizier_keras.client._policy import NO_RETRY, PollPolicy, RetryPolicy

__all__ = [
    "CLOUD_PLATFORM_SCOPE",
    "ENDPOINT_ENV",
    "NO_RETRY",
    "PollPolicy",
    "RetryPolicy",
    "SuggestResult",
    "VizierClient",
    "endpoint_from_environment",
    "vertex_endpoint",
]
