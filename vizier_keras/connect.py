"""Where the Keras layer's Vizier is: Vertex AI, a self-hosted endpoint, or the embedded service.

The choice, made once, the first time a tuner (or :func:`vizier_keras.suggest_trial`) needs the
service:

1. an explicit ``client=`` or ``endpoint=``;
2. else ``$VIZIER_ENDPOINT`` (read here, at the edge): any project and region on that server;
3. else, with a ``project_id``: Vertex AI in ``region``, with Application Default Credentials
   (or the ``credentials=`` / ``session=`` given);
4. else the embedded service for a database file in the project directory, started on a free
   loopback port (or found, when another worker of the same job started it). Resource names
   then use project ``local`` and location ``local``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from vizier_keras.client import VizierClient, endpoint_from_environment
from vizier_keras.errors import ValidationError
from vizier_keras.resources import LocationName

logger = logging.getLogger(__name__)

__all__ = ["Connection", "ConnectionOptions", "connect", "LOCAL_PROJECT", "LOCAL_REGION"]

LOCAL_PROJECT = "local"
LOCAL_REGION = "local"
DATABASE_NAME = "vizier.db"


@dataclass
class Connection:
    """A client and the location its studies live in.

    Attributes:
        client: The REST client.
        parent: ``projects/{project}/locations/{region}``.
        kind: "vertex", "endpoint" or "embedded".
        server: The embedded server, when that is what serves.
    """

    client: VizierClient
    parent: LocationName
    kind: str
    server: Any = None

    def describe(self) -> str:
        if self.kind == "embedded":
            return f"the embedded Vizier service at {self.client.endpoint}"
        if self.kind == "vertex":
            return f"Vertex AI Vizier in {self.parent.name}"
        return f"the Vizier service at {self.client.endpoint}"


@dataclass(frozen=True)
class ConnectionOptions:
    """How to reach Vizier besides the project and region: the keyword arguments that
    ``CloudTuner``, ``CloudOracle`` and ``suggest_trial`` take, kept together and passed to
    :func:`connect` as one object.

    Attributes:
        endpoint: A Vizier REST endpoint to use with any project and region.
        client: A ready client (its endpoint wins over everything else).
        session, credentials, token: For the client that :func:`connect` makes.
    """

    endpoint: str | None = None
    client: VizierClient | None = None
    session: Any = None
    credentials: Any = None
    token: str | None = None

    FIELDS: ClassVar[tuple[str, ...]] = ("endpoint", "client", "session", "credentials",
                                         "token")

    @classmethod
    def pop_from(cls, kwargs: dict[str, Any]) -> ConnectionOptions:
        """The options among ``kwargs``, removed from it."""
        return cls(**{k: kwargs.pop(k) for k in cls.FIELDS if k in kwargs})

    def as_kwargs(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.FIELDS}

    def connect(self, project_id: str | None, region: str | None, *,
                directory: str | os.PathLike[str] | None = None,
                environ: Mapping[str, str] | None = None) -> Connection:
        """:func:`connect` with these options."""
        return connect(project_id, region, directory=directory, environ=environ,
                       **self.as_kwargs())


def connect(
    project_id: str | None,
    region: str | None,
    *,
    directory: str | os.PathLike[str] | None = None,
    endpoint: str | None = None,
    client: VizierClient | None = None,
    session: Any = None,
    credentials: Any = None,
    token: str | None = None,
    environ: Mapping[str, str] | None = None,
    client_options: Mapping[str, Any] | None = None,
) -> Connection:
    """Find the Vizier service to use (see the module's docstring for the order).

    Args:
        project_id: The Google Cloud project, or None.
        region: The region (Vertex AI location); "us-central1" when a project is given without
            one.
        directory: Where the embedded service keeps its database (needed for it).
        endpoint: A Vizier REST endpoint to use with any project and region.
        client: A ready client (its endpoint wins over everything else).
        session, credentials, token: Passed to the client.
        environ: The environment to read ``VIZIER_ENDPOINT`` from (default ``os.environ``).
        client_options: More keyword arguments for :class:`VizierClient`.

    Raises:
        ValidationError: No way to reach a service (no project, no endpoint, no directory).
    """
    options = dict(client_options or {})
    if client is not None:
        parent = LocationName(project_id or LOCAL_PROJECT, region or LOCAL_REGION)
        kind = "vertex" if client.is_vertex else "endpoint"
        return Connection(client, parent, kind)
    endpoint = endpoint or endpoint_from_environment(environ)
    if endpoint is not None:
        parent = LocationName(project_id or LOCAL_PROJECT, region or LOCAL_REGION)
        made = VizierClient(endpoint, session=session, credentials=credentials, token=token,
                            **options)
        return Connection(made, parent, "vertex" if made.is_vertex else "endpoint")
    if project_id is not None:
        region = region or "us-central1"
        made = VizierClient(region=region, session=session, credentials=credentials,
                            token=token, **options)
        return Connection(made, LocationName(project_id, region), "vertex")
    if directory is None:
        raise ValidationError("project_id", None, "give a Google Cloud project, an endpoint, or "
                              "a directory for the embedded Vizier service")
    from vizier_keras.server.embedded import start_local_server

    server = start_local_server(os.path.join(os.fspath(directory), DATABASE_NAME))
    made = VizierClient(server.url, token=server.token, **options)
    logger.info("no Google Cloud project given: using the embedded Vizier service at %s",
                server.url)
    return Connection(made, LocationName(LOCAL_PROJECT, region or LOCAL_REGION), "embedded",
                      server)
