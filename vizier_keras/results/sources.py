"""Where studies are read from: a database file of the embedded service, a Vizier endpoint, or
Vertex AI. One interface, :class:`Source`, over the three; :func:`open_source` picks one.

A database file is read directly (no server needed, nothing written); a deletion goes through
the server that holds the file when one runs, else into the file in one transaction.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from vizier_keras.errors import MissingExtraError, NotFoundError, ValidationError
from vizier_keras.resources import LocationName, StudyName
from vizier_keras.wire import Json

__all__ = ["DatabaseSource", "ServiceSource", "Source", "open_source"]



class Source:
    """Studies and their trials, as v1 messages (proto3 JSON, canonical form).

    Attributes:
        records_stops: Whether trials say themselves that Vizier stopped them early (the
            embedded service records it); where not (Vertex AI), it is inferred.
    """

    records_stops = True

    def describe(self) -> str:
        raise NotImplementedError

    def list_studies(self) -> list[Json]:
        raise NotImplementedError

    def list_trials(self, study: Mapping[str, Any]) -> list[Json]:
        raise NotImplementedError

    def delete_study(self, study: Mapping[str, Any]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Release what the source holds (idempotent)."""

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def find_study(self, ref: str, studies: list[Json] | None = None) -> Json:
        """The study ``ref`` names: its display name, its id, or its resource name, among
        ``studies`` (default: :meth:`list_studies`, read now).

        Raises:
            NotFoundError: No study matches; the message lists the studies there are.
            ValidationError: Two studies share the display name (give the id).
        """
        if studies is None:
            studies = self.list_studies()
        for study in studies:
            if study["name"] == ref:
                return study
        by_id = [s for s in studies if StudyName.from_name(s["name"]).study_id == ref]
        by_name = [s for s in studies if s.get("displayName") == ref]
        if len(by_name) > 1:
            ids = ", ".join(StudyName.from_name(s["name"]).study_id for s in by_name)
            raise ValidationError("study", ref, f"names {len(by_name)} studies (ids {ids}); "
                                  "give the id")
        found = by_name or by_id
        if not found:
            known = ", ".join(repr(s.get("displayName")) for s in studies[:20]) or "none"
            raise NotFoundError(f"no study {ref!r} in {self.describe()} (studies: {known})")
        return found[0]


class DatabaseSource(Source):
    """The studies in a database file of the embedded service (``vizier.db``)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        try:
            from vizier_keras.server.sqlfile import DatabaseFile
        except ImportError as e:
            raise MissingExtraError("reading a database file", "results",
                                    [str(e.name or "vizier")]) from None

        self.file = DatabaseFile(path)

    def describe(self) -> str:
        return self.file.path

    def list_studies(self) -> list[Json]:
        return self.file.list_studies()

    def list_trials(self, study: Mapping[str, Any]) -> list[Json]:
        return self.file.list_trials(StudyName.from_name(study["name"]))

    def delete_study(self, study: Mapping[str, Any]) -> None:
        from vizier_keras.client import VizierClient
        from vizier_keras.server.embedded import find_local_server

        server = find_local_server(self.file.path)
        if server is None:
            self.file.delete_study(StudyName.from_name(study["name"]))
            return
        with VizierClient(server.url, token=server.token) as client:
            client.delete_study(study["name"])


class ServiceSource(Source):
    """The studies of one location of a Vizier service (Vertex AI or an endpoint)."""

    def __init__(self, client: Any, parent: LocationName, *, owned: bool = True) -> None:
        self.client = client
        self.parent = parent
        self.records_stops = not client.is_vertex
        self._owned = owned

    def describe(self) -> str:
        return f"{self.parent.name} at {self.client.endpoint}"

    def list_studies(self) -> list[Json]:
        return list(self.client.list_studies(self.parent))

    def list_trials(self, study: Mapping[str, Any]) -> list[Json]:
        return list(self.client.list_trials(study["name"]))

    def delete_study(self, study: Mapping[str, Any]) -> None:
        self.client.delete_study(study["name"])

    def close(self) -> None:
        if self._owned:
            self.client.close()


def open_source(*, database: str | os.PathLike[str] | None = None, endpoint: str | None = None,
                token: str | None = None, project: str | None = None,
                region: str | None = None, client: Any = None,
                environ: Mapping[str, str] | None = None) -> Source:
    """The source the arguments name: ``database``; else a ``client`` or ``endpoint`` (or
    ``$VIZIER_ENDPOINT``) with ``project``/``region`` (default ``local``/``local``, the
    embedded service's); else Vertex AI for ``project`` in ``region`` (default us-central1).

    Raises:
        ValidationError: Nothing names a source, or two ways are given at once.
    """
    if database is not None:
        if endpoint is not None or client is not None:
            raise ValidationError("database", os.fspath(database),
                                  "give a database or an endpoint, not both")
        return DatabaseSource(database)
    from vizier_keras.connect import ConnectionOptions

    if endpoint is None and client is None and project is None and not _has_endpoint(environ):
        raise ValidationError("source", None, "give a database file (--database), an endpoint "
                              "(--endpoint or VIZIER_ENDPOINT) or a Google Cloud project "
                              "(--project)")
    reach = ConnectionOptions(endpoint=endpoint, client=client, token=token)
    connection = reach.connect(project, region, environ=environ)
    return ServiceSource(connection.client, connection.parent, owned=client is None)


def _has_endpoint(environ: Mapping[str, str] | None) -> bool:
    from vizier_keras.client import endpoint_from_environment

    return endpoint_from_environment(environ) is not None
