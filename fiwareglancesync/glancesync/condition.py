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

Why not a library such as ``simpleeval``: it rejects forbidden constructs only while
evaluating, image by image; an operator must learn about a bad condition at load time.
"""

from __future__ import annotations

import ast
from types import CodeType, MappingProxyType
from typing import Any, Iterable

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
        try:
            tree = ast.parse(text.strip(), mode="eval")
        except SyntaxError as exc:
            raise ConditionError(f"invalid expression {text!r}: {exc.msg}") from None
        for node in ast.walk(tree):
            _check(node)
        self._code: CodeType = compile(tree, "metadata_condition", "eval")

    def evaluate(self, image: Any, metadata_set: Iterable[str]) -> Any:
        """The value of the expression for ``image`` (truthy means: synchronise it)."""
        scope = {"image": ImageView(image), "metadata_set": frozenset(metadata_set)}
        return eval(self._code, {"__builtins__": {}, **SAFE_BUILTINS}, scope)  # noqa: S307 - checked tree

    def __repr__(self) -> str:
        return f"Condition({self.text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Condition) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)


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
