"""The registry's one failure type: a clear line for the user, raised before anything is changed."""

from tuneforge.base.errors import StageError


class RegistryError(StageError):
    """Unknown model/version/alias, invalid name, tampered blob, refused promotion, unusable database.

    A StageError, so a stage whose registration fails reports it the same way as any other stage failure.
    """
