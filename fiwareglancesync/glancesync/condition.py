"""The safe evaluator of ``metadata_condition``.

The option keeps the original's expression language, a Python expression over ``image`` and
``metadata_set``, for example::

    image.is_public and image.user_properties.get('type', None) == 'baseimages'
    'nid' in image.user_properties and not image.name.startswith('test')

but it is never handed to a full Python ``eval``.  The text is parsed with :mod:`ast` and every
node checked against an allow-list *when the configuration is loaded*, so a forbidden construct
is a configuration error before anything runs: no imports, no comprehensions or lambdas, no
dunder (or any unlisted) attribute, calls only to a few harmless builtins and read-only methods.
The checked tree is then evaluated with no builtins at all besides that list.

Evaluation is bounded too: an expression longer than :data:`MAX_LENGTH` characters or nested
deeper than :data:`MAX_DEPTH` is refused at load, and ``*``, ``+`` and ``%`` are evaluated by
:func:`_bounded`, which refuses to build a sequence of more than :data:`MAX_REPEAT` items, so a
condition cannot exhaust memory or time (``'a' * 1000000000`` fails on the first image, which is
then not synchronised, with a warning).

Why not a library such as ``simpleeval``: it rejects forbidden constructs only while
evaluating, image by image; an operator must learn about a bad condition at load time.
"""

from __future__ import annotations

import ast
import re
from types import CodeType, MappingProxyType
from typing import Any, Iterable

MAX_LENGTH = 10_000       # characters of an expression
MAX_DEPTH = 100           # nesting of its syntax tree
MAX_REPEAT = 1_000_000    # items (characters) a ``*`` of a sequence may produce

# Names an expression may use, besides the constants True/False/None.
VARIABLES = frozenset({"image", "metadata_set"})
SAFE_BUILTINS = {
    "len": len, "str": str, "int": int, "float": float, "bool": bool,
    "set": set, "frozenset": frozenset, "min": min, "max": max, "abs": abs,
}
# Attributes of ``image`` an expression may read.
IMAGE_ATTRIBUTES = frozenset({
    "name", "id", "region", "owner", "is_public", "checksum", "size", "status", "user_properties",
})
# Read-only methods of str, dict and set that an expression may call.
SAFE_METHODS = frozenset({
    "get", "keys", "values", "items",
    "startswith", "endswith", "lower", "upper", "strip", "lstrip", "rstrip", "split",
    "isdigit", "isalpha", "isalnum",
    "intersection", "union", "difference", "issubset", "issuperset", "isdisjoint",
})
ALLOWED_NODES = (
    ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub, ast.UAdd,
    ast.Compare, ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn,
    ast.Is, ast.IsNot, ast.BinOp, ast.Add, ast.Sub, ast.Mult, ast.Mod,
    ast.IfExp, ast.Constant, ast.Name, ast.Load, ast.Attribute, ast.Subscript, ast.Call,
    ast.Tuple, ast.List, ast.Set, ast.Dict, ast.Slice,
)


class ConditionError(ValueError):
    """The expression is not valid or uses a construct that is not allowed."""


class ImageView:
    """What ``image`` is inside an expression: the listed attributes, read-only."""

    __slots__ = ("name", "id", "region", "owner", "is_public", "checksum", "size", "status",
                 "user_properties")

    def __init__(self, image: Any):
        for attribute in self.__slots__:
            value = getattr(image, attribute)
            if attribute == "user_properties":
                value = MappingProxyType(dict(value))
            object.__setattr__(self, attribute, value)


class Condition:
    """A checked ``metadata_condition``; call :meth:`evaluate` per master image."""

    def __init__(self, text: str):
        self.text = text
        if len(text) > MAX_LENGTH:
            raise ConditionError(f"the expression has {len(text)} characters, more than the {MAX_LENGTH} allowed")
        try:
            tree = ast.parse(text.strip(), mode="eval")
        except SyntaxError as exc:
            raise ConditionError(f"invalid expression {_short(text)}: {exc.msg}") from None
        except (RecursionError, MemoryError):
            raise ConditionError(f"the expression is nested more deeply than the {MAX_DEPTH} levels allowed") from None
        _check_depth(tree)
        for node in ast.walk(tree):
            _check(node)
        tree = ast.fix_missing_locations(_BoundedOperators().visit(tree))
        self._code: CodeType = compile(tree, "metadata_condition", "eval")

    def evaluate(self, image: Any, metadata_set: Iterable[str]) -> Any:
        """The value of the expression for ``image`` (truthy means: synchronise it)."""
        scope = {"image": ImageView(image), "metadata_set": frozenset(metadata_set)}
        return eval(self._code, _GLOBALS, scope)  # noqa: S307 - checked tree

    def __repr__(self) -> str:
        return f"Condition({self.text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Condition) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)


def _check_depth(tree: ast.AST) -> None:
    """Refuse trees nested deeper than MAX_DEPTH (walked iteratively: no recursion limit)."""
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ConditionError(f"the expression is nested more deeply than the {MAX_DEPTH} levels allowed")
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


_BOUNDED = "__glancesync_bounded"  # not a name an expression can write: _check refuses it
# A %-format field a million characters wide or more, or taking its width from an argument (``*``).
_WIDE_FORMAT = re.compile(r"%[^%a-zA-Z]*(\*|\d{7,})")


def _sized(value: Any) -> int:
    return len(value) if isinstance(value, (str, bytes, list, tuple)) else 0


def _bounded(operator: str, left: Any, right: Any) -> Any:
    """``left <operator> right`` for ``*``, ``+`` and ``%``, refusing to build a sequence of more
    than MAX_REPEAT items (the check comes first: nothing big is ever built)."""
    if operator == "*":
        for sequence, count in ((left, right), (right, left)):
            if _sized(sequence) and isinstance(count, int) and _sized(sequence) * count > MAX_REPEAT:
                raise ValueError(f"repetition would build {_sized(sequence) * count} items "
                                 f"(at most {MAX_REPEAT} allowed)")
        return left * right
    if operator == "+":
        if _sized(left) + _sized(right) > MAX_REPEAT:
            raise ValueError(f"concatenation would build more than {MAX_REPEAT} items")
        return left + right
    if isinstance(left, str) and _WIDE_FORMAT.search(left):
        raise ValueError(f"a %-format field wider than {MAX_REPEAT} characters (or of width *) is not allowed")
    return left % right


class _BoundedOperators(ast.NodeTransformer):
    """Turns every ``a * b``, ``a + b`` and ``a % b`` of a checked tree into ``_bounded(op, a, b)``."""

    SYMBOLS = {ast.Mult: "*", ast.Add: "+", ast.Mod: "%"}

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        self.generic_visit(node)
        symbol = self.SYMBOLS.get(type(node.op))
        if symbol is None:
            return node
        call = ast.Call(func=ast.Name(_BOUNDED, ast.Load()), args=[ast.Constant(symbol), node.left, node.right],
                        keywords=[])
        return ast.copy_location(call, node)


_GLOBALS = {"__builtins__": {}, **SAFE_BUILTINS, _BOUNDED: _bounded}


def _short(text: str, limit: int = 200) -> str:
    return repr(text) if len(text) <= limit else repr(text[:limit]) + "..."


def _check(node: ast.AST) -> None:
    if not isinstance(node, ALLOWED_NODES):
        raise ConditionError(f"{type(node).__name__} is not allowed in metadata_condition "
                             f"({_snippet(node)})")
    if isinstance(node, ast.Name) and node.id not in VARIABLES | SAFE_BUILTINS.keys() | {"True", "False", "None"}:
        raise ConditionError(f"unknown name {node.id!r} (allowed: image, metadata_set, "
                             f"{', '.join(sorted(SAFE_BUILTINS))})")
    if isinstance(node, ast.Attribute):
        if node.attr.startswith("_") or node.attr not in IMAGE_ATTRIBUTES | SAFE_METHODS:
            raise ConditionError(f"attribute {node.attr!r} is not allowed ({_snippet(node)})")
    if isinstance(node, ast.Call):
        if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            raise ConditionError(f"keyword or starred arguments are not allowed ({_snippet(node)})")
        func = node.func
        if isinstance(func, ast.Name) and func.id in SAFE_BUILTINS:
            return
        if isinstance(func, ast.Attribute) and func.attr in SAFE_METHODS:
            return
        raise ConditionError(f"call of {_snippet(func)} is not allowed "
                             f"(allowed: {', '.join(sorted(SAFE_BUILTINS))} and read-only methods)")
    if isinstance(node, ast.Constant) and isinstance(node.value, (bytes, type(Ellipsis))):
        raise ConditionError(f"constant {node.value!r} is not allowed")


def _snippet(node: ast.AST) -> str:
    try:
        return ast.unparse(node)
    except Exception:  # pragma: no cover - unparse handles every node ast.parse produces
        return type(node).__name__
