import pytest

from core.auth.roles import Permission, Role, allows


@pytest.mark.parametrize(
    ("role", "permission", "allowed"),
    [
        (Role.ADMIN, Permission.PRIVACY, True),
        (Role.ADMIN, Permission.KEYS_MANAGE, True),
        (Role.MANAGER, Permission.CUSTOMERS_MERGE, True),
        (Role.MANAGER, Permission.PRIVACY, False),
        (Role.MANAGER, Permission.KEYS_MANAGE, False),
        (Role.AGENT, Permission.TIMELINE_READ, True),
        (Role.AGENT, Permission.CUSTOMERS_MERGE, False),
        (Role.AGENT, Permission.AUDIT_READ, False),
        (Role.INTEGRATION, Permission.INTERACTIONS_WRITE, True),
        (Role.INTEGRATION, Permission.PRIVACY, False),
    ],
)
def test_role_grants(role: Role, permission: Permission, allowed: bool) -> None:
    assert allows(role, permission) is allowed


def test_every_role_can_do_the_everyday_work() -> None:
    for role in Role:
        assert allows(role, Permission.CUSTOMERS_READ)
        assert allows(role, Permission.INTERACTIONS_WRITE)
