"""A throwaway fourth protocol, and the one line that registers it: loaded as a pytest plugin
(``-p tests.app.codecs.fourth_codec``) before any test module imports ``app.codecs.CODECS``.

It is made to differ from the other three wherever a codec can: its path names the model
``{model}`` rather than ``{name}``, its errors are ``{"fault": {"reason": ...}}``, its probe is
its own. ``test_a_fourth_codec.py`` runs the table-driven tests with it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict

import app.codecs
import tests.support
from app.codecs.base import (
    Call,
    Codec,
    ErrorEnvelope,
    Operation,
    PathParameter,
    Reply,
    decode_json,
    error_headers,
    json_reply,
    validate_envelope,
)
from app.dataplane import InferenceRequest, Rows
from app.errors import ServiceError

TRAINED_REPOSITORY_ENV = "FOURTH_CODEC_TRAINED_REPOSITORY"  # test_a_fourth_codec.py sets it


class RowsRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"rows": [[3, 3, 6, 7, 8, 2, 11, 11, 1, 3]]}]},
    )

    rows: Any


class Scores(BaseModel):
    scores: list[list[float]]


class FaultDetail(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str


class Fault(ErrorEnvelope):
    fault: FaultDetail

    @property
    def message(self) -> str:
        return self.fault.reason


async def predict(call: Call) -> Reply:
    """Scores for rows."""
    payload = validate_envelope(RowsRequest, decode_json(call.body))
    request = InferenceRequest(Rows(payload.rows, "rows"), model_name=call.path_params["model"])
    result = await call.dataplane.infer(request)
    return json_reply({"scores": result.probabilities}, options=orjson.OPT_SERIALIZE_NUMPY)


async def healthz(call: Call) -> Reply:
    """Up."""
    return json_reply({"up": True})


def render_error(error: ServiceError) -> Reply:
    body = orjson.dumps({"fault": {"reason": error.message}})
    return Reply(body, error.status_code, headers=error_headers(error))


CODEC = Codec(
    name="rows",
    tag="Rows",
    operations=[
        Operation(
            "POST",
            "/rows/{model}/predict",
            predict,
            "Score rows",
            Scores,
            request_model=RowsRequest,
            errors=(400, 404),
        ),
        Operation("GET", "/rows/healthz", healthz, "Up", public=True, probe=True),
    ],
    render_error=render_error,
    error_model=Fault,
    error_descriptions={400: "Bad rows", 404: "No such model"},
    path_parameters={"model": PathParameter("model", "The model to score with")},
)

# The registration line (app/codecs/__init__.py would say it for a real codec).
app.codecs.CODECS = (*app.codecs.CODECS, CODEC)

# The session's model, trained once by the test that runs this plugin, rather than again.
if TRAINED_REPOSITORY_ENV in os.environ:

    def copy_trained(repository: Path, *extra_args: str) -> None:
        shutil.copytree(os.environ[TRAINED_REPOSITORY_ENV], repository, dirs_exist_ok=True)

    tests.support.train_small_model = copy_trained
