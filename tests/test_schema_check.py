"""The one schema check of stored documents (bayes_mem.live.validate.check_schema): every reader
refuses a wrong or missing schema and a non-document with the message it gave before the check
was shared (issue 20: each one was a copy), and accepts the schemas it reads."""

from __future__ import annotations

import pytest

from bayes_mem.live.changepoint import ChangeAlarm, NormalGammaBOCPD, load_detector
from bayes_mem.live.decider import Decider
from bayes_mem.live.payoff import PayoffModel
from bayes_mem.live.prior_set import PriorSet, PriorSetError
from bayes_mem.live.regime import RegimeForgetting
from bayes_mem.live.return_model import ReturnModel
from bayes_mem.live.validate import check_schema

_FOUND = {"other": "'other/9'", "missing": "None", "list": "'list'", "none": "'NoneType'"}
_BAD = {"other": {"schema": "other/9"}, "missing": {}, "list": [], "none": None}
_DECIDER = ("not a bayes_mem.decider/2 snapshot (or bayes_mem.decider/3, or an older one it "
            "reads: ('bayes_mem.decider/1',)); schema: ")  # fmt: skip
_PRIOR_SET = "not a bayes_mem.prior_set/2 (or bayes_mem.prior_set/1) document (schema: "
READERS = {  # reader, error type, message given what was found
    "regime": (lambda x: RegimeForgetting.from_snapshot(Decider(["a"]), x), ValueError,
               lambda f: "not a bayes_mem.regime_forgetting/1 snapshot"),
    "changepoint": (NormalGammaBOCPD.from_snapshot, ValueError,
                    lambda f: f"not a bayes_mem.changepoint/1 snapshot (schema: {f})"),
    "load_detector": (load_detector, ValueError,
                      lambda f: f"not a bayes_mem.changepoint/1 snapshot (schema: {f})"),
    "alarm": (ChangeAlarm.from_snapshot, ValueError,
              lambda f: "not a bayes_mem.change_alarm/1 snapshot"),
    "return_model": (ReturnModel.from_snapshot, ValueError,
                     lambda f: "not a bayes_mem.return_model/1 snapshot"),
    "payoff": (PayoffModel.from_dict, ValueError,
               lambda f: f"not a bayes_mem.payoff/1 snapshot (schema: {f})"),
    "decider": (Decider.from_snapshot, ValueError, lambda f: _DECIDER + f),
    "prior_set": (PriorSet.from_dict, PriorSetError, lambda f: _PRIOR_SET + f + ")"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(_BAD))
@pytest.mark.parametrize("reader", sorted(READERS))
def test_every_reader_refuses_with_its_own_message(reader, case):
    read, error, message = READERS[reader]
    with pytest.raises(error) as info:
        read(_BAD[case])
    assert str(info.value) == message(_FOUND[case])


def test_check_schema_returns_the_schema_it_accepts():
    assert check_schema({"schema": "s/2"}, "s/2") == "s/2"
    assert check_schema({"schema": "s/1"}, "s/2", also=("s/1", "s/3")) == "s/1"
    with pytest.raises(ValueError, match=r"^not a s/2 snapshot \(schema: 's/4'\)$"):
        check_schema({"schema": "s/4"}, "s/2", also=("s/1",))
    with pytest.raises(KeyError, match="custom 'dict'"):  # a mapping that is not the type asked
        check_schema({"schema": "s/2"}, "s/2", mapping=list, error=KeyError,
                     message=lambda got: f"custom {got!r}")  # fmt: skip
    # readers still accept their own snapshots
    d = Decider(["a"])
    assert Decider.from_snapshot(d.snapshot()).signals == d.signals
