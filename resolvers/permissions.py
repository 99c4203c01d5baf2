"""Who may call what at the field: ``permission_classes=[AdminOnly]`` on every admin root field.

The role check that decides is static and runs before execution (gateway/roles.py, the ``requires``
marker every root field carries, checked by gateway/web/guard.py for every transport); this permission
checks the same at the field, so an admin operation stays admin-only even if its marker were lost.
"""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.permission import BasePermission

from gateway.roles import ANONYMOUS, Role


class AdminOnly(BasePermission):
    message = "this operation needs the admin role"
    error_extensions = {"code": "FORBIDDEN"}

    def has_permission(self, source: Any, info: strawberry.Info, **kwargs: Any) -> bool:
        return bool(getattr(info.context, "principal", ANONYMOUS).may(Role.ADMIN))
