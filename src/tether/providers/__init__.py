"""Model providers behind the one ``Model`` protocol.

Providers are imported lazily: ``import tether`` must not pay for the
anthropic or openai SDKs, or llama.cpp, unless they are used.
"""

from tether.providers.registry import default_models, model_from_spec
from tether.providers.scripted import FunctionModel, ScriptedModel, call
from tether.spec.model import Model, ModelRequest, ModelResponse, TextDelta

__all__ = [
    "FunctionModel",
    "Model",
    "ModelRequest",
    "ModelResponse",
    "ScriptedModel",
    "TextDelta",
    "call",
    "default_models",
    "model_from_spec",
]
