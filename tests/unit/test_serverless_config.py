"""Reading the Serverless templates: libyaml's parser, where PyYAML has it, reads what PyYAML's own does."""

from __future__ import annotations

import os

import yaml

from sagatools import serverless_config
from sagatools.serverless_config import SERVERLESS_YML, STEPS_YML


class _PurePythonLoader(yaml.SafeLoader):
    pass


_PurePythonLoader.add_multi_constructor("!", serverless_config.any_tag)


def test_both_templates_read_the_same_with_either_parser():
    for path in (SERVERLESS_YML, STEPS_YML):
        assert serverless_config._read_yaml(path) == yaml.load(path.read_text(), Loader=_PurePythonLoader)  # noqa: S506


def test_the_tags_of_cloudformation_read_as_plain_values():
    read = serverless_config.parse_yaml("a: !Ref X\nb: !GetAtt [T, Arn]\nc: !Sub {s: v}\n")
    assert read == {"a": {"Ref": "X"}, "b": {"GetAtt": ["T", "Arn"]}, "c": {"Sub": {"s": "v"}}}


def test_a_template_is_parsed_again_once_it_changes_and_read_from_the_run_cache_until_then(tmp_path, monkeypatch):
    monkeypatch.setenv("RUNTEST_CACHE_DIR", str(tmp_path / "cache"))
    template = tmp_path / "serverless.yml"
    template.write_text("service: first\n")
    parsed = []
    parse = serverless_config.parse_yaml
    monkeypatch.setattr(serverless_config, "parse_yaml", lambda text: parsed.append(text) or parse(text))
    assert serverless_config._read_yaml(template) == {"service": "first"}
    assert serverless_config._read_yaml(template) == {"service": "first"}
    assert len(parsed) == 1  # the second came from the cache
    template.write_text("service: second, longer\n")
    assert serverless_config._read_yaml(template) == {"service": "second, longer"}
    assert len(parsed) == 2


def test_a_template_restored_with_its_old_time_but_other_content_is_parsed_again(tmp_path, monkeypatch):
    # Given a template read once, so that the run cache holds its parse
    monkeypatch.setenv("RUNTEST_CACHE_DIR", str(tmp_path / "cache"))
    template = tmp_path / "serverless.yml"
    template.write_text("service: first\n")
    assert serverless_config._read_yaml(template) == {"service": "first"}
    stat = template.stat()
    # When other content of the same size is restored with the old time (as cp -p, rsync -a and tar do)
    template.write_text("service: other\n")
    os.utime(template, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert template.stat().st_size == stat.st_size
    # Then what is read is the new content, not the stale parse
    assert serverless_config._read_yaml(template) == {"service": "other"}
