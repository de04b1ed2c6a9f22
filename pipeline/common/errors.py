"""Domain errors. Each subclasses a built-in and names the offending value and its origin."""


class ConfigError(ValueError):
    """A configuration key has a wrong value (message names the key and the value)."""


class InvalidSoundingError(ValueError):
    """A sounding record is malformed or inconsistent (message: ``path:line: what``)."""


class InvalidGaugeError(ValueError):
    """A rain-gauge record is malformed (message: ``path:line: what``)."""


class GridError(ValueError):
    """Region boxes or grids that cannot be built or joined."""


class NormalisationError(ValueError):
    """A channel cannot be normalised (zero variance, too few samples)."""


class NonFiniteDataError(ValueError):
    """A NaN or infinity where the data contract allows none (message names the store, the
    variable, the channel, the time and the value)."""


class TrainingDivergedError(FloatingPointError):
    """The training or validation loss became NaN or infinite (message names the epoch, the
    batch and the value)."""
