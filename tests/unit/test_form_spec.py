"""The forms as data (conversations/spec.py) and their drafts (conversations/draft.py), without a bot or a
database: the rules the engine follows, the catalogue keys each step derives, and the stored layout,
including drafts written before it was versioned."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from conversations.draft import VERSION, Draft, UnreadableDraft, touched_at
from conversations.spec import (
    SUMMARY,
    Checkpoint,
    Field,
    FormSpec,
    Repeat,
    Secret,
    SecretPair,
    as_typed,
)
from conversations.specs.login import SPEC as LOGIN
from conversations.specs.recovery import SPEC as RECOVERY
from conversations.specs.registration import SPEC as REGISTRATION
from unogas_bot import rules
from unogas_bot.i18n import texts

SPECS = [REGISTRATION, LOGIN, RECOVERY]
NOW = datetime(2025, 3, 10, 9, 30, tzinfo=UTC)

IDENTITY = {
    "customer_code": "UG-100234",
    "kind": "person",
    "first_name": "Mario",
    "last_name": "Rossi",
    "tax_code": "RSSMRA75C12H501H",
    "phone": None,
}


def draft_with(answers: dict[str, object] | None = None, **engine: object) -> Draft:
    return Draft(answers=dict(answers or {}), **engine)  # type: ignore[arg-type]


def past_notice(answers: dict[str, object] | None = None, **engine: object) -> Draft:
    """A registration draft past the privacy notice, which every registration shows first."""
    return draft_with({"privacy": "accept", **(answers or {})}, **engine)


def keys(spec: FormSpec, draft: Draft) -> list[str]:
    return [step.key for step in spec.applicable(draft.answers)]


# --- steps, order, what applies ----------------------------------------------------------------------------


def test_the_privacy_notice_comes_first_unnumbered_and_out_of_the_summary():
    notice = REGISTRATION.steps[0]
    assert notice.key == "privacy" and not notice.counted and not notice.in_summary
    assert REGISTRATION.next_step(draft_with()) is notice
    assert notice.parse("accept", {}, pressed=True) == "accept"
    assert notice.parse(" Continua ", {}) == "accept"
    with pytest.raises(rules.Invalid):
        notice.parse("UG-100234", {})


def test_a_secret_pair_is_two_steps_with_derived_keys():
    assert [s.key for s in REGISTRATION.steps][-5:] == [
        "password",
        "password_repeat",
        "question",
        "answer",
        "answer_repeat",
    ]
    pair = REGISTRATION.by_key["password"]
    assert isinstance(pair, SecretPair)
    assert (pair.store_as, pair.mismatch) == ("password_hash", "password_mismatch")
    repeat = REGISTRATION.by_key["password_repeat"]
    assert isinstance(repeat, Repeat) and repeat.of is pair and repeat.confirms == "password"
    assert repeat.secret and pair.secret and not REGISTRATION.by_key["email"].secret
    assert REGISTRATION.states[-1] == SUMMARY and "answer_repeat" in REGISTRATION.states


def test_a_person_and_a_business_are_asked_different_names():
    person = draft_with({"kind": "person"})
    business = draft_with({"kind": "business"})
    assert "first_name" in keys(REGISTRATION, person) and "company_name" not in keys(REGISTRATION, person)
    assert "company_name" in keys(REGISTRATION, business) and "last_name" not in keys(REGISTRATION, business)


def test_the_next_step_is_the_first_unanswered_and_progress_counts_applicable_steps():
    draft = past_notice({"customer_code": "UG-100234", "kind": "business"})
    step = REGISTRATION.next_step(draft)
    assert step is not None and step.key == "company_name"
    assert REGISTRATION.progress(draft, step) == (3, 11)  # a business: no first and last name; no notice
    person = past_notice({"customer_code": "UG-100234"})
    assert REGISTRATION.progress(person, REGISTRATION.by_key["customer_code"]) == (1, 12)


def test_a_skipped_optional_answer_counts_as_answered():
    draft = past_notice(IDENTITY)
    step = REGISTRATION.next_step(draft)
    assert step is not None and step.key == "email"


def test_secrets_count_as_answered_by_digest_or_hash_never_in_clear():
    pair, repeat = REGISTRATION.by_key["password"], REGISTRATION.by_key["password_repeat"]
    typed = draft_with(digests={"password": "digest"})
    assert pair.is_answered(typed) and not repeat.is_answered(typed)
    confirmed = draft_with({"password_hash": "$2b$"})
    assert pair.is_answered(confirmed) and repeat.is_answered(confirmed)
    answer = RECOVERY.by_key["answer"]
    assert isinstance(answer, Secret) and answer.is_answered(draft_with(digests={"answer": "d"}))
    consumed = LOGIN.by_key["password"]
    assert not consumed.is_answered(draft_with({"password": "x"}, digests={"password": "d"}))


def test_login_is_done_when_only_its_consumed_password_is_left():
    draft = draft_with({"email": "mario.rossi@example.it"})
    step = LOGIN.next_step(draft)
    assert step is not None and step.key == "password"


# --- parsing -----------------------------------------------------------------------------------------------


def test_a_pressed_button_is_one_of_the_choices_and_a_typed_one_goes_through_the_rule():
    kind = REGISTRATION.by_key["kind"]
    assert kind.parse("business", {}, pressed=True) == "business"
    with pytest.raises(rules.Invalid):
        kind.parse("admin", {}, pressed=True)
    assert kind.parse("Azienda", {}) == "business"


def test_skip_on_an_optional_step_stores_none():
    assert REGISTRATION.by_key["phone"].parse("salta", {}) is None


def test_a_rule_is_given_the_answers_it_needs():
    tax_code = REGISTRATION.by_key["tax_code"]
    assert tax_code.parse("02847390586", {"kind": "business"}) == "02847390586"
    with pytest.raises(rules.Invalid):
        tax_code.parse("02847390586", {"kind": "person"})  # a partita IVA where a person's code is due
    with pytest.raises(rules.Invalid):
        REGISTRATION.by_key["password"].parse("Rossi Lanterna 1987", {"last_name": "Rossi"})
    assert REGISTRATION.by_key["answer_repeat"].parse("  BRICIOLA  ", {}) == "briciola"


# --- forgetting, going back ------------------------------------------------------------------------------


def test_changing_the_kind_forgets_names_tax_code_and_the_identity_check():
    draft = draft_with({**IDENTITY, "verified": True, "email": "m@example.it"}, history=list(IDENTITY))
    REGISTRATION.forget(draft, "kind")
    assert set(draft.answers) == {"customer_code", "phone", "email"}
    assert draft.history == ["customer_code", "phone"]


def test_forgetting_the_dependants_of_the_identity_forgets_phone_and_login_data():
    """After a mismatch, or when another customer is verified, nothing given for the previous identity is
    kept: not the phone, not the e-mail, password, question or answer (issue 13)."""
    answers = {
        **IDENTITY,
        "verified": True,
        "email": "m@example.it",
        "password_hash": "$2b$",
        "question": "Q?",
    }
    draft = draft_with(answers, digests={"answer": "d"}, history=[*IDENTITY, "email", "password", "question"])
    REGISTRATION.forget_dependants(draft, REGISTRATION.checkpoints[0])
    assert draft.digests == {}
    assert not {"phone", "email", "password_hash", "question"} & set(draft.answers)
    assert set(IDENTITY) - {"phone"} | {"verified"} <= set(draft.answers)  # the identity itself stays
    assert "phone" not in draft.history and "email" not in draft.history


def test_a_checkpoint_may_only_clear_steps_after_what_it_checks():
    fields = (Field("a", as_typed), Field("b", as_typed), Field("c", as_typed))
    with pytest.raises(ValueError, match="clears a step not after"):
        FormSpec(
            "f", fields, ("f",), checkpoints=(Checkpoint("ok", checks=("b",), before="c", clears=("a",)),)
        )


def test_changing_the_phone_keeps_the_identity_check():
    draft = draft_with({**IDENTITY, "verified": True})
    REGISTRATION.forget(draft, "phone")
    assert draft.answers["verified"] is True


def test_forgetting_a_secret_pair_forgets_its_digest_hash_and_repeat():
    draft = draft_with({"password_hash": "$2b$"}, history=["password", "password_repeat"])
    REGISTRATION.forget(draft, "password")
    assert draft.answers == {} and draft.history == []
    draft = draft_with({"answer_hash": "$2b$"}, digests={"answer": "d"}, history=["question", "answer"])
    REGISTRATION.forget(draft, "question")  # a new question asks the answer again
    assert draft.answers == {} and draft.digests == {} and draft.history == []


def test_forgetting_the_repetition_means_typing_the_pair_again():
    draft = past_notice(digests={"password": "d"})
    REGISTRATION.forget(draft, "password_repeat")
    assert draft.digests == {}
    step = REGISTRATION.next_step(draft)
    assert step is not None and step.key == "customer_code"


def test_back_skips_a_repetition_and_says_when_there_is_nothing_before():
    draft = draft_with(
        {**IDENTITY, "verified": True, "email": "m@example.it", "password_hash": "$2b$"},
        history=[*IDENTITY, "email", "password", "password_repeat"],
    )
    assert REGISTRATION.back(draft) == "password"
    assert "password_hash" not in draft.answers and draft.history[-1] == "email"
    assert RECOVERY.back(draft_with()) is None


def test_back_over_a_step_of_an_older_form_only_leaves_the_history():
    draft = draft_with({"email": "m@example.it"}, history=["email", "no_longer_asked"])
    assert LOGIN.back(draft) == "email"
    assert draft.history == [] and draft.answers == {}


# --- checkpoints ----------------------------------------------------------------------------------------


def test_the_identity_check_is_due_once_the_identity_is_answered_and_not_after_it_passed():
    assert REGISTRATION.due_checkpoint(past_notice({"customer_code": "UG-100234"})) is None
    assert REGISTRATION.due_checkpoint(draft_with(IDENTITY)) is None  # the notice comes first
    checkpoint = REGISTRATION.due_checkpoint(past_notice(IDENTITY))
    assert checkpoint is not None and checkpoint.key == "verified" and checkpoint.before == "email"
    assert REGISTRATION.due_checkpoint(past_notice({**IDENTITY, "verified": True})) is None


def test_recovery_identifies_before_the_security_question():
    answered = draft_with({"email": "m@example.it", "customer_code": "UG-100234"})
    checkpoint = RECOVERY.due_checkpoint(answered)
    assert checkpoint is not None and checkpoint.checks == ("email", "customer_code")
    answered.answers["account_id"] = 7
    RECOVERY.forget(answered, "customer_code")
    assert "account_id" not in answered.answers


# --- catalogue keys ------------------------------------------------------------------------------------


def test_catalogue_keys_come_from_the_field_key_and_the_form_prefix():
    assert LOGIN.question_key(LOGIN.by_key["email"], {}) == "q_login_email"
    assert LOGIN.by_key["email"].hint == "ph_email"
    assert RECOVERY.help_key(RECOVERY.by_key["password_repeat"], {}) == "h_new_password_repeat"
    tax_code = REGISTRATION.by_key["tax_code"]
    assert REGISTRATION.question_key(tax_code, {"kind": "business"}) == "q_tax_code_business"
    assert REGISTRATION.label_key(tax_code) == "label_tax_code"


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_every_key_a_step_can_ask_for_is_in_both_catalogues(spec: FormSpec):
    wanted: set[str] = {spec.intro} if spec.intro else set()
    for kind in ("person", "business"):
        answers = {"kind": kind}
        for step in spec.steps:
            wanted |= {spec.question_key(step, answers), spec.help_key(step, answers)}
            wanted |= {step.hint} if step.hint else set()
            wanted |= {f"btn_{value}" for value in step.choices}
            if spec.has_summary and step.in_summary:
                wanted.add(spec.label_key(step))
            if isinstance(step, SecretPair):
                wanted.add(step.mismatch)
    for lang in texts.LANGUAGES:
        assert sorted(wanted - texts.load()[lang].keys()) == [], lang


# --- a spec's mistakes fail at import -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "checkpoints"),
    [
        ((Field("a", as_typed), Field("a", as_typed)), ()),
        ((Field("_at", as_typed),), ()),
        ((Field(SUMMARY, as_typed),), ()),
        ((Field("a", as_typed), Field("b", as_typed, clears=("a",))), ()),
        ((Field("a", as_typed, clears=("nowhere",)),), ()),
        ((SecretPair("p", as_typed), Repeat("p_repeat", as_typed, of=SecretPair("p", as_typed))), ()),
        ((Field("a", as_typed), Field("b", as_typed)), (Checkpoint("ok", checks=("b",), before="a"),)),
        ((Field("a", as_typed),), (Checkpoint("a", checks=(), before="a"),)),
    ],
    ids=[
        "twice",
        "engine key",
        "summary",
        "clears earlier",
        "clears nothing",
        "repeat listed",
        "late",
        "step",
    ],
)
def test_a_malformed_spec_is_refused(fields: tuple[Field, ...], checkpoints: tuple[Checkpoint, ...]):
    with pytest.raises(ValueError):
        FormSpec("broken", fields, ("x",), checkpoints=checkpoints)


def test_a_secret_pair_is_never_optional_or_consumed():
    with pytest.raises(ValueError):
        SecretPair("p", as_typed, optional=True)
    with pytest.raises(ValueError):
        SecretPair("p", as_typed, consumed=True)


# --- the draft ---------------------------------------------------------------------------------------------

# A draft as the engine stored it before the layout had a version: a registration at the password's
# repetition, with an invalid tax code typed once on the way.
UNVERSIONED = {
    "_history": [
        "customer_code",
        "kind",
        "first_name",
        "last_name",
        "tax_code",
        "phone",
        "email",
        "password",
    ],
    "_n": 10,
    **IDENTITY,
    "_errors": {"tax_code": 1},
    "verified": True,
    "email": "mario.rossi@example.it",
    "_rk": False,
    "_mac": {"password": "k1:0f3a"},
    "_at": "password_repeat",
    "_touched": "2025-03-10T09:30:00+00:00",
}


def test_a_draft_stored_before_versions_reads_and_goes_on_where_it_was():
    draft = Draft.from_stored(UNVERSIONED)
    assert draft.answers == {**IDENTITY, "verified": True, "email": "mario.rossi@example.it"}
    assert (draft.at, draft.serial, draft.errors, draft.touched) == (
        "password_repeat",
        10,
        {"tax_code": 1},
        NOW,
    )
    assert draft.digests == {"password": "k1:0f3a"}
    assert draft.to_stored() == {**UNVERSIONED, "_v": VERSION}
    # Begun before the privacy notice existed: the notice is shown, then the registration goes on.
    step = REGISTRATION.next_step(draft)
    assert step is not None and step.key == "privacy"
    draft.answers["privacy"] = "accept"
    step = REGISTRATION.next_step(draft)
    assert step is not None and step.key == "password_repeat"


def test_a_draft_round_trips_through_json_and_reading_copies_it():
    stored = json.loads(json.dumps(Draft.from_stored(UNVERSIONED).to_stored()))
    draft = Draft.from_stored(stored)
    draft.answers["email"] = "other@example.it"
    draft.history.append("password_repeat")
    draft.digests.clear()
    assert stored["email"] == "mario.rossi@example.it" and stored["_mac"] and len(stored["_history"]) == 8


def test_empty_engine_parts_are_not_stored():
    assert Draft(at="customer_code").to_stored() == {
        "_v": VERSION,
        "_at": "customer_code",
        "_n": 0,
        "_history": [],
        "_rk": False,
    }


@pytest.mark.parametrize(
    "stored",
    [
        {**UNVERSIONED, "_v": VERSION + 1},
        {**UNVERSIONED, "_n": "10"},
        {**UNVERSIONED, "_n": True},
        {**UNVERSIONED, "_history": "email"},
        {**UNVERSIONED, "_mac": {"password": 3}},
        {**UNVERSIONED, "_touched": "yesterday"},
        {**UNVERSIONED, "_answers": {}},
        ["not", "a", "draft"],
    ],
    ids=["later version", "serial text", "serial bool", "history", "digest", "time", "unknown key", "list"],
)
def test_a_draft_this_code_cannot_read_is_refused_not_guessed(stored: object):
    with pytest.raises(UnreadableDraft):
        Draft.from_stored(stored)


def test_touched_at_tells_housekeeping_which_values_are_drafts():
    assert touched_at(UNVERSIONED) == NOW
    assert touched_at({**UNVERSIONED, "_touched": "2025-03-10T09:30:00"}) == NOW  # naive: read as UTC
    assert touched_at({**UNVERSIONED, "_touched": "soon"}) is None
    assert touched_at("en") is None and touched_at({"form": "login"}) is None


def test_the_timeout_counts_from_the_last_change():
    draft = Draft(touched=NOW)
    assert not draft.idle_longer_than(NOW + timedelta(minutes=30), timedelta(minutes=30))
    assert draft.idle_longer_than(NOW + timedelta(minutes=31), timedelta(minutes=30))
    assert not Draft().idle_longer_than(NOW, timedelta(0))


def test_invalid_replies_are_counted_to_the_limit_then_start_over():
    draft = Draft()
    assert [draft.count_error("email", 3) for _ in range(4)] == [False, False, True, False]
    draft.answered_step("email")
    assert draft.errors == {} and draft.history == ["email"]
    draft.answered_step("password", remembered=False)
    assert draft.history == ["email"]


def test_restart_forgets_the_answers_but_not_the_chat():
    draft = Draft.from_stored(UNVERSIONED)
    draft.reply_keyboard = True
    draft.restart()
    assert (draft.answers, draft.history, draft.errors, draft.digests, draft.at) == ({}, [], {}, {}, None)
    assert (draft.serial, draft.touched, draft.reply_keyboard) == (10, NOW, True)
