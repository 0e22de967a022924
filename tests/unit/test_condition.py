"""The safe metadata_condition evaluator: the original's language works, code execution does not."""

from __future__ import annotations

import pytest

from fiwareglancesync.glancesync.condition import Condition, ConditionError
from tests.factories import image

BASE = image(name="base_ubuntu", id="1", checksum="c", size=5, type="baseimages", nid="12")
PRIVATE = image(name="test_private", id="2", is_public=False, type="other")


@pytest.mark.parametrize("text,base,private", [
    ("image.is_public and image.user_properties.get('type', None) == 'baseimages'", True, False),
    ("'nid' in image.user_properties", True, False),
    ("not image.is_public", False, True),
    ("image.is_public or image.name.startswith('test')", True, True),
    ("image.is_public and\\\n 'type' in image.user_properties and image.user_properties['type']\\\n  == 'baseimages'", True, False),
    ("image.size > 3 and image.user_properties.get('nid', '0') != '0'", True, False),
    ("metadata_set.intersection(image.user_properties)", True, True),
    ("len(image.user_properties) >= 2", True, False),
    ("image.user_properties.get('type') in ('baseimages', 'other')", True, True),
    ("int(image.user_properties.get('nid', 0)) == 12", True, False),
    ("False", False, False),
])
def test_original_expressions(text, base, private):
    condition = Condition(text)
    assert bool(condition.evaluate(BASE, {"type"})) is base
    assert bool(condition.evaluate(PRIVATE, {"type"})) is private


@pytest.mark.parametrize("text", [
    "__import__('os').system('id')",
    "().__class__.__bases__[0].__subclasses__()",
    "open('/etc/passwd').read()",
    "lambda: 1",
    "[x for x in ()]",
    "image.__dict__",
    "exec('1')",
    "getattr(image, 'name')",
    "eval('1')",
    "image.name.format(image)",
    "(x := 1)",
    "image.user_properties.pop('type')",
    "globals()",
    "{k: 1 for k in 'ab'}",
    "image._secret",
    "b'bytes'",
    "str(**{})",
    "image.name +",
])
def test_unsafe_or_invalid_is_rejected_at_load_time(text):
    with pytest.raises(ConditionError):
        Condition(text)


def test_message_says_what_is_wrong():
    with pytest.raises(ConditionError, match="attribute '__dict__' is not allowed"):
        Condition("image.__dict__")
    with pytest.raises(ConditionError, match="call of getattr is not allowed"):
        Condition("getattr(image, 'name')")
    with pytest.raises(ConditionError, match="Lambda is not allowed"):
        Condition("lambda: 1")


def test_properties_are_read_only_inside_the_expression():
    condition = Condition("image.user_properties")
    view = condition.evaluate(BASE, set())
    with pytest.raises(TypeError):
        view["type"] = "changed"
    assert BASE.user_properties["type"] == "baseimages"
