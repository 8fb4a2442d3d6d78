"""``localcloud.motopatch``: counted installs, undone exactly, and refusals that keep a
patch from vanishing or going missing without a word."""

from __future__ import annotations

import pytest

from localcloud.motopatch import Patch, PatchError, Target, applied


class Base:
    def inherited(self) -> str:
        return "base"


class Owner(Base):
    def own(self) -> str:
        return "own"


def _shouting(original):
    return lambda self: original(self).upper()


def _patch(*names: str) -> Patch:
    return Patch("test", {Target(__name__, "Owner", name): _shouting for name in names})


def test_installs_are_counted_and_the_last_uninstall_restores_moto_exactly():
    patch = _patch("own", "inherited")
    with applied(patch):
        with applied(patch):
            assert Owner().own() == "OWN"
        assert Owner().inherited() == "BASE"  # still installed: one user left
    assert (Owner().own(), Owner().inherited()) == ("own", "base")
    assert "inherited" not in vars(Owner)  # inherited again, not copied onto the class
    assert not patch.installed()


def test_uninstall_refuses_when_something_replaced_the_patch_meanwhile():
    patch = _patch("own")
    patch.install()
    replacement = Owner.own
    Owner.own = lambda self: "someone else's"  # type: ignore[method-assign]
    try:
        with pytest.raises(PatchError, match="was replaced"):
            patch.uninstall()
    finally:
        Owner.own = replacement  # type: ignore[method-assign]
        patch.uninstall()
    assert Owner().own() == "own"


def test_a_target_that_is_gone_refuses_to_install_and_leaves_nothing_behind():
    patch = _patch("own", "renamed_by_a_new_moto")
    with pytest.raises(PatchError, match="is gone"):
        patch.install()
    assert Owner().own() == "own" and not patch.installed()


def test_uninstalling_what_is_not_installed_is_an_error():
    with pytest.raises(PatchError, match="not installed"):
        _patch("own").uninstall()


def test_prepare_keeps_moto_patched_when_what_undoes_it_is_dropped():
    """moto's own process (``make run``) drops prepare()'s undo and serves for hours."""
    import gc

    from localcloud import motoprocess

    motoprocess.prepare()  # dropped, as motoprocess.serve() drops it
    gc.collect()
    try:
        assert all(patch.installed() for patch in motoprocess.patches())
    finally:
        for patch in reversed(motoprocess.patches()):
            patch.uninstall()
    assert not any(patch.installed() for patch in motoprocess.patches())
