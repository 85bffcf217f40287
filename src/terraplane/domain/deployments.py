"""Deployments and their operations: states and transitions."""

from __future__ import annotations

import enum

from terraplane.domain.transitions import check_transition


class DeploymentStatus(enum.StrEnum):
    PENDING = "pending"
    APPLYING = "applying"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"
    DESTROYING = "destroying"
    DESTROYED = "destroyed"

    @property
    def busy(self) -> bool:
        return self in (
            DeploymentStatus.PENDING,
            DeploymentStatus.APPLYING,
            DeploymentStatus.DESTROYING,
        )


_SETTLED = frozenset(
    {DeploymentStatus.SUCCEEDED, DeploymentStatus.FAILED, DeploymentStatus.ROLLED_BACK}
)

DEPLOYMENT_TRANSITIONS: dict[DeploymentStatus, frozenset[DeploymentStatus]] = {
    DeploymentStatus.PENDING: frozenset(
        {DeploymentStatus.SUCCEEDED, DeploymentStatus.FAILED, DeploymentStatus.APPLYING}
    ),
    # APPLYING -> APPLYING: a failed apply hands over to its rollback.
    DeploymentStatus.APPLYING: _SETTLED | {DeploymentStatus.APPLYING},
    DeploymentStatus.DESTROYING: frozenset({DeploymentStatus.DESTROYED, DeploymentStatus.FAILED}),
    DeploymentStatus.SUCCEEDED: frozenset({DeploymentStatus.APPLYING, DeploymentStatus.DESTROYING}),
    DeploymentStatus.FAILED: frozenset({DeploymentStatus.APPLYING, DeploymentStatus.DESTROYING}),
    DeploymentStatus.ROLLED_BACK: frozenset(
        {DeploymentStatus.APPLYING, DeploymentStatus.DESTROYING}
    ),
    DeploymentStatus.DESTROYED: frozenset(),
}


def transition_deployment(current: DeploymentStatus, target: DeploymentStatus) -> DeploymentStatus:
    return check_transition(DEPLOYMENT_TRANSITIONS, current, target)


class OperationKind(enum.StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DESTROY = "destroy"
    DRIFT_CHECK = "drift_check"
    # Re-applying the deployment's current version and variables after drift was found.
    RECONCILE = "reconcile"


class OperationStatus(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"

    @property
    def final(self) -> bool:
        return self in (
            OperationStatus.SUCCEEDED,
            OperationStatus.FAILED,
            OperationStatus.ROLLED_BACK,
        )


class RunPurpose(enum.StrEnum):
    APPLY = "apply"
    ROLLBACK = "rollback"
    DESTROY = "destroy"
    DRIFT = "drift"


class DriftStatus(enum.StrEnum):
    OK = "ok"
    DRIFTED = "drifted"
    ERROR = "error"
    NEVER_RUN = "never_run"
