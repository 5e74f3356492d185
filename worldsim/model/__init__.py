"""The LSSVWM network and its inference memory."""

from worldsim.model.cache import InferenceCache
from worldsim.model.lssvwm import LSSVWM, ModelOutput

__all__ = ["LSSVWM", "InferenceCache", "ModelOutput"]
