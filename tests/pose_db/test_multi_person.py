"""Multi-person action specs: coverage, prompt grammar and contacts that really meet.

The full library run (``test_library``) checks that every action fills its 30 entries; these
tests are the fast, specific ones for the interaction files: the NTU RGB+D / AVA classes and
the groups the issue names are there, every phrase reads as a sentence, and hands that an
action joins (held hands, a stack of hands, a carried body) meet in the 2D skeletons too.
"""

import re

import numpy as np
import pytest

from pose_db.library.gate import QualityGate
from pose_db.library.generate import generate_library
from pose_db.library.specs import load_actions
from pose_db.scene.skeleton import KEYPOINT_INDEX as K

_WRISTS = (K["r_wrist"], K["l_wrist"])


def _multi():
    return [a for a in load_actions() if a.n_people > 1]


def test_interactions_cover_the_two_and_three_person_classes():
    actions = _multi()
    by_people = {n: {a.id for a in actions if a.n_people == n} for n in (2, 3)}
    assert len(by_people[2]) >= 85 and len(by_people[3]) >= 24
    # NTU RGB+D two-person classes and AVA person-person actions, by their action ids.
    for wanted in ("punching", "kicking", "pushing_someone", "pat_on_back", "pointing_finger_at", "hug",
                   "passing_object", "pickpocketing", "handshake", "walking_towards_each_other",
                   "walking_apart", "hitting_with_object", "threatening_with_knife", "knocked_down",
                   "snatching_bag", "threatening_at_gunpoint", "stepping_on_foot", "high_five",
                   "toast_cheers", "carrying_box_together", "photographing_someone", "following_someone",
                   "whispering", "exchanging_things", "helping_injured_walk", "rock_paper_scissors",
                   "talking_face_to_face", "watching_someone", "clapping_game", "kiss", "bear_hug_lift",
                   "serving_food", "grabbing_arm"):
        assert wanted in by_people[2], wanted
    for wanted in ("waltz", "tango", "swing_dance_twirl", "dance_dip", "ballet_lift", "boxing_sparring",
                   "fencing", "wrestling_lockup", "pushing_wheelchair", "tennis_doubles_stance", "tug_of_war",
                   "spotting_squat", "partner_stretch_seated", "kiss_on_cheek", "couple_selfie",
                   "forehead_touch", "reading_together", "parent_child_walk_hand", "lifting_child_high"):
        assert wanted in by_people[2], wanted
    for wanted in ("group_photo_line", "team_huddle", "three_friends_walking", "family_swing_child",
                   "carried_by_arms_and_legs", "dance_trio", "human_pyramid", "group_hug", "team_high_five",
                   "conversation_circle", "referee_between_boxers", "storytime_two_kids"):
        assert wanted in by_people[3], wanted


def test_every_multi_person_phrase_reads_as_a_clause():
    """A phrase without placeholders follows the group ("two friends <phrase>"), so it must
    start with a verb: "a romantic kiss" would read "two lovers a romantic kiss"."""
    for action in _multi():
        for phrase in action.say:
            if "{" not in phrase:
                assert not re.match(r"^(a|an|the)\b", phrase), (action.id, phrase)
            else:
                wanted = set(re.findall(r"\{(\d)", phrase))
                assert all(int(i) < action.n_people for i in wanted), (action.id, phrase)


def _gap(a, b):
    return min(np.linalg.norm(a.xy[i] - b.xy[j]) for i in _WRISTS for j in _WRISTS)


def _torso(p):
    return np.linalg.norm(p.xy[K["neck"]] - (p.xy[K["r_hip"]] + p.xy[K["l_hip"]]) / 2)


@pytest.mark.parametrize("action_id, pairs", [
    ("ring_around_rosie", [(0, 2), (2, 1), (1, 0)]),        # every neighbour's hand is held
    ("hands_in_team_stack", [(0, 1), (0, 2)]),
    ("family_swing_child", [(2, 0), (2, 1)]),
    ("salsa", [(0, 1)]),
    ("carried_by_arms_and_legs", [(0, 2)]),
])
def test_joined_hands_meet_in_every_view(action_id, pairs):
    gate = QualityGate()
    entries = list(generate_library(actions=[action_id], variations=12, gate=gate))
    assert len(entries) >= 10  # the readability rule may leave an action a few entries short
    for e in entries:
        people = e.scene.people
        for a, b in pairs:
            t = (_torso(people[a]) + _torso(people[b])) / 2
            assert _gap(people[a], people[b]) < 0.25 * t, (e.id, e.view, a, b)


def test_a_carried_person_is_off_the_floor_between_the_carriers():
    """The carried body hangs between two standing carriers: its hips level with their hands."""
    for e in generate_library(actions=["carried_by_arms_and_legs", "human_pyramid"], variations=6):
        carriers, top = e.scene.people[:2], e.scene.people[2]
        hips = (top.xy[K["r_hip"], 1] + top.xy[K["l_hip"], 1]) / 2
        feet = max(p.xy[K["r_ankle"], 1] for p in carriers)
        assert hips < feet - 0.5 * _torso(carriers[0]), e.id  # image y grows downwards
