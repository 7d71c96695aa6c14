"""The embedded Vizier service: the Vertex AI Vizier v1 REST API over Open Source Vizier.

Needs the ``[local]`` extra. Nothing heavy is imported here: :mod:`.embedded` (start or find a
server process for a database file) is light enough for the tuner's process, which must not load
JAX's Vizier next to TensorFlow. The service itself lives in :mod:`.service` (in process) and
:mod:`.app` (HTTP, ``serve()``); ``python -m vizier_keras.server`` runs it.
"""
