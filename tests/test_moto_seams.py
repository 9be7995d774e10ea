"""The embedded stack relies on moto internals; if an upgrade moves one, fail here, loudly and by name."""

from __future__ import annotations

import inspect

import moto
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

from sagatools.embedded import EmbeddedStack


def test_moto_is_the_pinned_version():
    assert moto.__version__ == "5.2.5", "the embedded stack's seams were checked against moto 5.2.5 only"


def test_lambda_simple_backend_invoke_has_the_signature_we_replace():
    parameters = list(inspect.signature(LambdaSimpleBackend.invoke).parameters)
    assert parameters == ["self", "function_name", "qualifier", "body", "headers", "response_headers"]


def test_retrier_sleeps_through_its_module_time_binding():
    assert "time.sleep(interval_seconds)" in inspect.getsource(retrier_decl.RetrierDecl._eval_body)


def test_the_stack_replaces_both_seams_and_restores_them():
    original_invoke, original_time = LambdaSimpleBackend.invoke, retrier_decl.time
    with EmbeddedStack() as stack:
        assert LambdaSimpleBackend.invoke is not original_invoke
        assert retrier_decl.time is stack.retry_clock
    assert LambdaSimpleBackend.invoke is original_invoke
    assert retrier_decl.time is original_time
