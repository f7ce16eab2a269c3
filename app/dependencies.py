"""FastAPI dependencies: what a route may ask for, taken from the application's state."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.config import Settings
from app.inference import Model
from app.repository import ModelRepository


def get_repository(request: Request) -> ModelRepository:
    repository: ModelRepository = request.app.state.repository
    return repository


def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


Repository = Annotated[ModelRepository, Depends(get_repository)]
AppSettings = Annotated[Settings, Depends(get_app_settings)]


def get_default_model(repository: Repository) -> Model:
    """The newest loaded version of the served model; 503 when there is none."""
    return repository.get(repository.name)


ServedModel = Annotated[Model, Depends(get_default_model)]
