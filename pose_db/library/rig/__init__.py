"""An articulated 3D body rig: the source of the library's synthetic skeletons.

``skeleton3d`` names the joint angles, their limits and the body profiles; ``kinematics`` poses
a body (forward kinematics); ``ik`` solves arms and legs onto contacts (two-bone IK); ``camera``
photographs the posed scene from a named view and projects it to OpenPose BODY-18.
"""

from .camera import VIEW_NAMES, Camera, camera_for_view, frame_people, keypoints_in_view
from .ik import POLES, LimbSolution, solve_limb
from .kinematics import Body3D, forward_kinematics
from .skeleton3d import BodyProfile, body_model, mirror_angles, neutral_angles

__all__ = [
    "VIEW_NAMES", "Camera", "camera_for_view", "frame_people", "keypoints_in_view",
    "POLES", "LimbSolution", "solve_limb", "Body3D", "forward_kinematics",
    "BodyProfile", "body_model", "mirror_angles", "neutral_angles",
]
