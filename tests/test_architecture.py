"""Rules of the layout that a reviewer would otherwise have to remember."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Model writes a page must leave to a service in a domain app (which opens the transaction, locks,
# re-checks and writes the audit row).
WRITE_METHODS = {"save", "update", "create", "delete", "bulk_create", "get_or_create", "update_or_create"}
# The Stripe webhook handlers: like views, they turn outside input into calls of services.
WEBHOOK_HANDLERS = ("commissions/stripe_intake.py", "payouts/webhooks.py")


def view_modules() -> list[Path]:
    """Everything under refapp/panel and refapp/portal, every app's views/ package and the webhook
    handlers."""
    paths = {
        *(ROOT / "refapp" / "panel").rglob("*.py"),
        *(ROOT / "refapp" / "portal").rglob("*.py"),
        *(path for views in ROOT.glob("*/views") for path in views.rglob("*.py")),
        *(ROOT / path for path in WEBHOOK_HANDLERS),
    }
    return sorted(paths)


def write_calls(path: Path, root: Path = ROOT) -> list[str]:
    """Every call of a method named like a model write; dict.update counts too, on purpose: a
    name-based scan cannot tell the receivers apart, and `d |= {...}` says the same thing."""
    tree = ast.parse(path.read_text(), filename=str(path))
    return [
        f"{path.relative_to(root).as_posix()}:{node.lineno}: .{node.func.attr}(...)"
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in WRITE_METHODS
    ]


def test_the_scan_sees_the_page_and_view_modules():
    scanned = {str(p.relative_to(ROOT)) for p in view_modules()}
    assert {
        "refapp/panel/views/programs.py",
        "refapp/portal/views/settings.py",
        "refapp/panel/forms.py",
    } <= scanned
    assert {"commissions/views/api.py", "payouts/views/webhooks.py", *WEBHOOK_HANDLERS} <= scanned


def test_the_scan_finds_each_kind_of_write(tmp_path):
    module = tmp_path / "bad.py"
    module.write_text(
        "def view(request, program, form):\n"
        "    Program.objects.filter(pk=1).update(name='x')\n"
        "    form.save()\n"
        "    Program.objects.get_or_create(slug='a')\n"
        "    ProgramStaff.objects.bulk_create([])\n"
        "    program.delete()\n"
    )
    assert write_calls(module, tmp_path) == [
        "bad.py:2: .update(...)",
        "bad.py:3: .save(...)",
        "bad.py:4: .get_or_create(...)",
        "bad.py:5: .bulk_create(...)",
        "bad.py:6: .delete(...)",
    ]


def test_views_never_write_models_directly():
    offenders = [call for path in view_modules() for call in write_calls(path)]
    assert not offenders, "views must write through a domain service:\n" + "\n".join(offenders)
