"""The bridge's trust operations: sign-in, users, API keys, the backend allow-list, the audit trail.

Part of the catalogue (``protocol.catalogue`` lists them after the backend operations);
kept apart because they are many and all answered by the bridge itself. Arguments and
reply fields marked secret never reach a notice, a log line, the audit trail or a
recording.
"""

from __future__ import annotations

from protocol.operation import PAGE, Access, Arg, ArgType, HandledBy, Operation, limit_arg, offset_arg
from protocol.roles import ORDER, Role
from protocol.shapes import Shape
from protocol.views import ViewKey as K

ROLES = tuple(r.value for r in ORDER)
KEY_KINDS = ("api_key", "gui")
BACKEND_MODE_CHOICES = ("real", "mock")
USER_NAME_RULE = "1–64 characters: letters, digits, `.`, `_`, `-`, `@`"
ACCESS_REFRESH = (K.ACCESS, K.AUDIT)

WHOAMI = (
    "`{kind: api_key|gui, user (null: no user signed in), role (null likewise), via, key_id, "
    "expires_at (session only), settings: map}`"
)


def _user(doc: str = "User name.") -> Arg:
    return Arg("name", ArgType.STRING, f"{doc} ({USER_NAME_RULE}).", is_id=True)


def _new_password() -> Arg:
    return Arg(
        "password",
        ArgType.STRING,
        "The new password (at least 8 characters); null: the bridge generates one and returns it once.",
        required=False,
        nullable=True,
        secret=True,
    )


def _public_key() -> Arg:
    return Arg("public_key", ArgType.STRING, "A CURVE public key, z85 (40 characters).", is_id=True)


def _bridge(
    name: str,
    group: str,
    summary: str,
    access: Access,
    returns: str,
    args: tuple[Arg, ...] = (),
    *,
    role: Role | None = Role.ADMIN,
    secret_results: tuple[str, ...] = (),
) -> Operation:
    return Operation(
        name,
        group,
        summary,
        access,
        10.0,
        returns,
        args,
        handled_by=HandledBy.BRIDGE,
        refreshes=ACCESS_REFRESH if access is Access.WRITE else (),
        role=role,
        secret_results=secret_results,
    )


TRUST_OPERATIONS: tuple[Operation, ...] = (
    # -- sign-in (the GUI process acts for users who signed in through it) --
    _bridge(
        "login",
        "session",
        "Sign a user in through the GUI process that sends it; the token goes in the `auth` header of later requests.",
        Access.READ,
        "`{token, user, role, expires_at, idle_timeout_s, settings}`; UNAUTHENTICATED for a wrong name, password "
        "or code, RATE_LIMITED after repeated failures, FORBIDDEN from a principal that is not a GUI",
        (
            Arg("username", ArgType.STRING, "The user's name."),
            Arg("password", ArgType.STRING, "The user's password.", secret=True),
            Arg(
                "totp",
                ArgType.STRING,
                "The current 6-digit code, for a user with TOTP.",
                required=False,
                nullable=True,
                secret=True,
            ),
            Arg(
                "remote_address",
                ArgType.STRING,
                "The browser's address as the GUI sees it: failed sign-ins are throttled per address; "
                "it grants nothing.",
                required=False,
                nullable=True,
            ),
        ),
        role=None,
        secret_results=("token",),
    ),
    _bridge(
        "logout",
        "session",
        "End the session named by the request's `auth` header.",
        Access.READ,
        "`{ended: bool}`",
        role=None,
    ),
    _bridge("whoami", "session", "Who the bridge takes the sender for.", Access.READ, WHOAMI, role=None),
    _bridge(
        "set_settings",
        "session",
        "Merge keys into the acting user's settings (a null value removes the key); they follow the user.",
        Access.WRITE,
        "`{settings: map}`",
        (Arg("settings", ArgType.MAP, "Setting name → value (at most 64 keys, 16 KiB in all)."),),
        role=Role.VIEWER,
    ),
    # -- users --
    _bridge(
        "user_add",
        "users",
        "Create a user.",
        Access.WRITE,
        "`{name, role, password}`: `password` only when the bridge generated it; CONFLICT when the name exists",
        (_user(), Arg("role", ArgType.STRING, "The user's role.", choices=ROLES), _new_password()),
        secret_results=("password",),
    ),
    _bridge("user_list", "users", "Every user.", Access.READ, "`{items: [User], total}`"),
    _bridge(
        "user_remove",
        "users",
        "Remove a user, revoke their API keys and end their sessions.",
        Access.WRITE,
        "`{name, revoked_keys, ended_sessions}`; CONFLICT for the last admin",
        (_user(),),
    ),
    _bridge(
        "user_passwd",
        "users",
        "Set a user's password; their sessions end.",
        Access.WRITE,
        "`{name, password}`: `password` only when the bridge generated it",
        (_user(), _new_password()),
        secret_results=("password",),
    ),
    _bridge(
        "user_role",
        "users",
        "Change a user's role; their API keys never act above it.",
        Access.WRITE,
        "`{name, role}`; CONFLICT when it would leave no admin",
        (_user(), Arg("role", ArgType.STRING, "The new role.", choices=ROLES)),
    ),
    _bridge(
        "user_totp",
        "users",
        "Require (or stop requiring) a TOTP code at the user's sign-in (RFC 6238: SHA-1, 6 digits, 30 s).",
        Access.WRITE,
        "`{name, totp: bool, secret, otpauth_uri}`: `secret` (base32) and `otpauth_uri` only when enabling",
        (_user(), Arg("enable", ArgType.BOOLEAN, "True to require a code, false to stop.")),
        secret_results=("secret", "otpauth_uri"),
    ),
    # -- API keys --
    _bridge(
        "key_new",
        "keys",
        "Create a CURVE key pair bound to a user (the caller writes the connection file; the bridge keeps "
        "only the public key).",
        Access.WRITE,
        "`{key_id, user, role, label, kind, public_key, secret_key, bridge_public_key, created_at}`",
        (
            Arg("user", ArgType.STRING, "The user the key acts for.", is_id=True),
            Arg(
                "role",
                ArgType.STRING,
                "The key's role, at most the user's (null: the user's role).",
                required=False,
                nullable=True,
                choices=ROLES,
            ),
            Arg("label", ArgType.STRING, "A note (where the key is used).", required=False, nullable=True),
            Arg(
                "kind",
                ArgType.STRING,
                "`api_key` acts as its user; `gui` is a console process that acts only for users who sign in "
                "through it.",
                required=False,
                default="api_key",
                choices=KEY_KINDS,
            ),
        ),
        secret_results=("secret_key",),
    ),
    _bridge(
        "key_list",
        "keys",
        "API keys, revoked ones too.",
        Access.READ,
        "`{items: [ApiKey], total}`",
        (Arg("user", ArgType.STRING, "Only this user's keys.", required=False, nullable=True),),
    ),
    _bridge(
        "key_revoke",
        "keys",
        "Revoke an API key: its connections are refused from the next message on.",
        Access.WRITE,
        "`{key_id, revoked_at}`; CONFLICT when already revoked",
        (Arg("key_id", ArgType.STRING, "The key's id (`k-...`).", is_id=True),),
    ),
    # -- backends --
    _bridge(
        "backend_allow",
        "backends",
        "Allow a backend key to register, bound to a name and a mode (a mock key never speaks as real).",
        Access.WRITE,
        "`{public_key, name, mode, replaced}`",
        (
            _public_key(),
            Arg("name", ArgType.STRING, "The only name it may register under.", is_id=True),
            Arg("mode", ArgType.STRING, "The only mode it may register with.", choices=BACKEND_MODE_CHOICES),
        ),
    ),
    _bridge("backend_list", "backends", "The backend allow-list.", Access.READ, "`{items: [AllowedBackend], total}`"),
    _bridge(
        "backend_revoke",
        "backends",
        "Remove a backend key from the allow-list; its registration ends.",
        Access.WRITE,
        "`{public_key, name}`",
        (_public_key(),),
    ),
    # -- audit --
    _bridge(
        "get_audit_log",
        "audit",
        "The audit trail, newest first: every write, sign-in, refused key and role denial.",
        Access.READ,
        f"{PAGE} of AuditRecord",
        (
            offset_arg(),
            limit_arg(50, 1000),
            Arg("user", ArgType.STRING, "Only records of this user.", required=False, nullable=True),
            Arg("op", ArgType.STRING, "Only records of this operation.", required=False, nullable=True),
            Arg(
                "outcome",
                ArgType.STRING,
                "Only records with this outcome (`ok` or an error code).",
                required=False,
                nullable=True,
            ),
            Arg(
                "since",
                ArgType.INTEGER,
                "Only records at or after this Unix time (seconds).",
                required=False,
                nullable=True,
                minimum=0,
            ),
        ),
    ),
)

TRUST_SHAPES: tuple[Shape, ...] = (
    Shape(
        "User",
        "An operator who signs in to the GUI (user_list).",
        (
            ("name", "string"),
            ("role", "string: viewer, operator or admin"),
            ("totp", "boolean: sign-in asks for a TOTP code"),
            ("created_at", "datetime"),
            ("keys", "integer: API keys of this user not revoked"),
            ("sessions", "integer: GUI sessions open now"),
        ),
    ),
    Shape(
        "ApiKey",
        "A CURVE key bound to a user (key_list); the bridge never keeps its secret half.",
        (
            ("key_id", "string: `k-` and 12 hex digits"),
            ("user", "string"),
            ("role", "string: the key's role"),
            ("effective_role", "string or null: min(key role, the user's current role); null once revoked"),
            ("kind", "string: api_key or gui"),
            ("label", "string or null"),
            ("public_key", "string: z85"),
            ("created_at", "datetime"),
            ("revoked_at", "datetime or null"),
        ),
    ),
    Shape(
        "AllowedBackend",
        "A backend key of the allow-list (backend_list).",
        (
            ("public_key", "string: z85"),
            ("name", "string: the only name it registers under"),
            ("mode", "string: real or mock, the only mode it registers with"),
            ("registered", "boolean: a backend with this key is registered now"),
        ),
    ),
    Shape(
        "AuditRecord",
        "One entry of the audit trail (get_audit_log).",
        (
            ("ts", "datetime"),
            ("who", "{user, role, via}: via is `api_key:ID`, `gui:USER`, `gui`, `backend:NAME` or `anonymous`"),
            ("peer", "string or null: the peer's address"),
            ("op", "string: the operation, or `connect` for a key refused at the handshake"),
            ("ids", "map: the request's id arguments"),
            ("args", "map: the other arguments, secrets removed"),
            ("outcome", "string: ok or an error code"),
            ("message", "string: why, for a refusal or a failure"),
            ("repeated", "integer: the same refusal this many more times since the last record (rate limited)"),
            ("others_suppressed", "integer: refusals of other keys not recorded since the last record (flood)"),
        ),
    ),
)
