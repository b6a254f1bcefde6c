"""Name -> object registries that fail loudly (after timm's ``_registry.py``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, Generic, TypeVar

from selfsup.errors import ConfigError, UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """A named collection of classes or factories, filled by the ``register`` decorator."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(item: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = item
            return item

        return decorator

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}; valid {self.kind}s: {', '.join(sorted(self._items))}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


def choose(table: Mapping[str, T], name: str, what: str) -> T:
    """``table[name]``, or a ConfigError naming ``what`` and the valid names: for the small name -> implementation
    tables inside one module (losses, optimizers, predictors), where a Registry would be ceremony."""
    if name not in table:
        raise ConfigError(f"{what} must be one of {', '.join(table)}; got {name!r}")
    return table[name]


# The package's registries, here in the leaf so that any layer can look a name up without importing the layer that
# fills it (``selfsup.methods`` registers the methods, ``selfsup.backbones`` the encoders; importing ``selfsup``
# imports both). A method entry is its class: ``.Config`` (its params dataclass), ``.recipe``, ``.validate_run``.
METHODS: Registry[Any] = Registry("method")
BACKBONES: Registry[Any] = Registry("backbone")
OPTIMIZERS: Registry[Any] = Registry("optimizer")  # filled by selfsup.train.optim
