"""The GUI tests: every test here is marked ``gui`` and gets the Qt isolation of tests/conftest.py."""

import pytest


@pytest.fixture
def make_wizard(qtbot):
    """``make(**kwargs)``: a TrainWizard that is shut down (and checked to have no training thread left)
    after the test. Closing one mid-run answers "Stop training?" with Yes unless the test says otherwise,
    so a failing test's teardown never waits on the question."""
    from gui.wizard.wizard import TrainWizard

    made = []

    def make(**kwargs) -> TrainWizard:
        wizard = TrainWizard(**kwargs)
        wizard.confirm_stop = lambda: True
        qtbot.addWidget(wizard)
        made.append(wizard)
        return wizard

    yield make
    for wizard in made:
        wizard.shutdown()
        assert not wizard.training, "a training thread still runs after shutdown"
