"""Record: the base of the package's immutable value types (the events, a catalog's index state, a
planned action...), a frozen dataclass's behaviour without its import cost."""

from typing import dataclass_transform


@dataclass_transform(frozen_default=True)  # type checkers: a record's class is its constructor's signature
class Record:
    """An immutable record of the fields its class annotates (`index: str`; a default as `recorded: bool =
    False`; a subclass's after its base's), made by position or keyword (a missing or unknown argument: the
    TypeError of a function with those parameters), equal and hashed by type and fields, shown as
    `Built(migration_id='0001...', index=..., ...)`, matched by position (`case Built(migration_id, ...)`).
    `__match_args__` lists the fields' names in order (the --json report reads it). Copied and pickled as
    any object is.

    What @dataclass(frozen=True) gave, without its cost: the decorator writes and compiles each class's
    methods as the module loads, about 0.68 ms of CPU a class (a plain class: 0.01 ms), when Python, invoke
    and psycopg alone cost about what a no-op `yoyo apply` does (issue 22). Measured with `python -X
    importtime` (self time, .pyc present): the 52 events made their three modules' import cost 33 ms (1.7 ms
    as records); 24 other value types, 25 ms in their 15 modules (8 ms as records), which took a no-op
    `invoke status` from 0.30 s to 0.28 s of CPU (median of 15). Here one set of methods serves every
    record, and each class's fields are read once (__init_subclass__)."""

    __match_args__ = ()  # each class's fields' names, in order
    _defaults = {}  # each class's fields' defaults, by name

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        names = {}  # in order: a base's fields first, a redefined one where its base had it
        for base in reversed(cls.__mro__):
            if issubclass(base, Record) and base is not Record:
                names.update(dict.fromkeys(base.__annotations__))
        cls.__match_args__ = tuple(names)
        cls._defaults = {name: getattr(cls, name) for name in names if hasattr(cls, name)}

    def __init__(self, *args, **kwargs):
        names, defaults, init = self.__match_args__, self._defaults, f"{type(self).__qualname__}.__init__()"
        values = dict(zip(names, args))
        for name, value in kwargs.items():
            if name not in names:
                raise TypeError(f"{init} got an unexpected keyword argument {name!r}")
            if name in values:
                raise TypeError(f"{init} got multiple values for argument {name!r}")
            values[name] = value
        if len(args) > len(names):
            takes = (f"from {len(names) - len(defaults) + 1} to {len(names) + 1} positional arguments" if defaults
                     else f"{len(names) + 1} positional argument{'s' if names else ''}")
            raise TypeError(f"{init} takes {takes} but {len(args) + 1} were given")
        missing = [repr(name) for name in names if name not in values and name not in defaults]
        if missing:
            listed = missing[0] if len(missing) == 1 else (
                f"{', '.join(missing[:-1])}{',' if len(missing) > 2 else ''} and {missing[-1]}")
            raise TypeError(f"{init} missing {len(missing)} required positional argument"
                            f"{'s' if len(missing) > 1 else ''}: {listed}")
        for name in names:
            object.__setattr__(self, name, values[name] if name in values else defaults[name])

    def _values(self) -> tuple:
        return tuple(getattr(self, name) for name in self.__match_args__)

    def __eq__(self, other):
        return self._values() == other._values() if type(other) is type(self) else NotImplemented

    def __hash__(self):
        return hash(self._values())

    def __repr__(self):
        fields = ", ".join(f"{name}={value!r}" for name, value in zip(self.__match_args__, self._values()))
        return f"{type(self).__qualname__}({fields})"

    def __setattr__(self, name, value):
        raise AttributeError(f"cannot assign to field {name!r}")

    def __delattr__(self, name):
        raise AttributeError(f"cannot delete field {name!r}")
