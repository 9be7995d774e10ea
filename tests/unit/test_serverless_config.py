"""Reading the Serverless templates: libyaml's parser, where PyYAML has it, reads what PyYAML's own does."""

from __future__ import annotations

import yaml

from sagatools import serverless_config
from sagatools.serverless_config import SERVERLESS_YML, STEPS_YML


class _PurePythonLoader(yaml.SafeLoader):
    pass


_PurePythonLoader.add_multi_constructor("!", serverless_config._any_tag)


def test_both_templates_read_the_same_with_either_parser():
    for path in (SERVERLESS_YML, STEPS_YML):
        assert serverless_config._read_yaml(path) == yaml.load(path.read_text(), Loader=_PurePythonLoader)  # noqa: S506


def test_the_tags_of_cloudformation_read_as_plain_values():
    read = yaml.load("a: !Ref X\nb: !GetAtt [T, Arn]\nc: !Sub {s: v}\n", Loader=serverless_config._CloudFormationLoader)  # noqa: S506
    assert read == {"a": {"Ref": "X"}, "b": {"GetAtt": ["T", "Arn"]}, "c": {"Sub": {"s": "v"}}}
