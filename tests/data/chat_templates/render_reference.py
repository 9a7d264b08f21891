"""Renders the expected outputs of test_chat_template.cpp with the reference implementation.

Run once (on a machine with transformers): python3 render_reference.py TEMPLATE_DIR OUT.json
TEMPLATE_DIR holds ../shared/fixtures/templates/*.jinja; cases.json (beside this script) holds the
conversations, the special tokens of each template and the Jinja feature cases. Templates are
compiled exactly as transformers' apply_chat_template compiles them (its _compile_jinja_template:
a sandboxed jinja2 environment with trim_blocks, lstrip_blocks, loopcontrols, its own tojson,
raise_exception and strftime_now) and rendered with the arguments apply_chat_template passes
(messages, tools=None, documents=None, add_generation_prompt, the special tokens). Without
transformers the same environment is built from jinja2 directly, and the output says so.
"""
import json
import os
import sys
from datetime import datetime


def jinja2_environment_like_transformers():
    import jinja2
    import jinja2.ext
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt):
        return datetime.now().strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return "jinja2 " + jinja2.__version__ + " (transformers' environment, rebuilt)", env.from_string


def compiler():
    try:
        import transformers
        from transformers.utils.chat_template_utils import _compile_jinja_template
        import jinja2
        return "transformers " + transformers.__version__ + ", jinja2 " + jinja2.__version__, _compile_jinja_template
    except ImportError:
        return jinja2_environment_like_transformers()


def render(compile_template, source, variables):
    try:
        return {"output": compile_template(source).render(**variables)}
    except Exception as e:  # the test expects the same failure, so record it
        return {"error": type(e).__name__ + ": " + str(e)}


def main():
    template_dir, out_path = sys.argv[1], sys.argv[2]
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "cases.json"), encoding="utf-8") as f:
        cases = json.load(f)
    reference, compile_template = compiler()
    result = {"reference": reference, "templates": {}, "features": {}}
    for name, tokens in sorted(cases["special_tokens"].items()):
        with open(os.path.join(template_dir, name + ".jinja"), encoding="utf-8") as f:
            source = f.read()
        rendered = {}
        for conv in cases["conversations"]:
            variables = dict(messages=conv["messages"], tools=None, documents=None,
                             add_generation_prompt=conv["add_generation_prompt"], **tokens)
            rendered[conv["name"]] = render(compile_template, source, variables)
        result["templates"][name] = rendered
    for case in cases["features"]:
        result["features"][case["name"]] = render(compile_template, case["template"], case["vars"])
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(result, f, ensure_ascii=False, indent=1, sort_keys=True)
        f.write("\n")
    print(reference, "->", out_path)


if __name__ == "__main__":
    main()
