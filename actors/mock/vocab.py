"""Word lists the mock generator draws realistic names, platforms, paths and messages from.

Kept apart from the generator so the logic stays readable. Every list is a tuple: the
generator indexes them with its seeded RNG, so their order is part of determinism.
"""

from __future__ import annotations

USERS: tuple[str, ...] = (
    "alice",
    "bob",
    "carol",
    "dave",
    "erin",
    "frank",
    "grace",
    "heidi",
    "ivan",
    "judy",
    "karl",
    "laura",
    "mallory",
    "nina",
    "oscar",
    "peggy",
    "quentin",
    "rita",
    "sam",
    "trent",
    "ursula",
    "victor",
    "wendy",
    "xavier",
    "yuki",
    "zoe",
    "amir",
    "bianca",
    "chen",
    "dmitri",
    "elena",
    "farid",
    "greta",
    "hugo",
    "ines",
    "jonas",
    "kenji",
    "lena",
    "marco",
    "noor",
)
DEPARTMENTS: tuple[str, ...] = (
    "finance",
    "hr",
    "sales",
    "marketing",
    "legal",
    "support",
    "design",
    "eng",
    "ops",
    "research",
)
SITES: tuple[str, ...] = ("paris", "berlin", "lyon", "madrid", "london", "oslo", "austin", "osaka")

WINDOWS_DESKTOP: tuple[str, ...] = ("Windows 11 23H2", "Windows 11 24H2", "Windows 10 22H2")
WINDOWS_SERVER: tuple[str, ...] = ("Windows Server 2022", "Windows Server 2019")
MACOS: tuple[str, ...] = ("macOS 15.1", "macOS 14.6", "macOS 13.7")
LINUX: tuple[str, ...] = ("Ubuntu 24.04", "Ubuntu 22.04", "Debian 12", "Rocky Linux 9.4", "Fedora 40")
AGENT_VERSIONS: tuple[str, ...] = ("2.4.1", "2.4.1", "2.4.0", "2.3.7", "2.5.0", "2.2.9")

# (name pattern, platform family, share of clients); patterns use {dept} {user} {site} {n}.
CLIENT_KINDS: tuple[tuple[str, str, int], ...] = (
    ("{dept}-ws-{n:02d}", "windows", 30),
    ("{user}-laptop", "laptop", 20),
    ("{user}-macbook", "macos", 10),
    ("dev-{user}", "linux-desktop", 8),
    ("build-server-{n}", "linux", 6),
    ("{dept}-fs-{n}", "windows-server", 6),
    ("db-{env}-{n}", "linux", 6),
    ("web-{n:02d}", "linux", 7),
    ("{site}-nas-{n}", "linux", 7),
)
ENVIRONMENTS: tuple[str, ...] = ("prod", "staging", "dev")

# File name patterns by size category; {y} {m} {mm} {dd} {n} {q} {proj} are filled in.
TEXT_NAMES: tuple[str, ...] = (
    "notes-{m}.txt",
    "README.md",
    "todo.txt",
    "config.yaml",
    "settings.json",
    "main.py",
    "utils.py",
    "data-{n}.csv",
    "CHANGELOG.md",
    "deploy-{n}.sh",
    "requirements.txt",
    "app.log",
    "index.html",
)
DOC_NAMES: tuple[str, ...] = (
    "report-{y}.xlsx",
    "budget-{y}-Q{q}.xlsx",
    "invoice-{n:04d}.pdf",
    "meeting-notes-{y}-{mm}.docx",
    "contract-{n}.pdf",
    "presentation-{m}.pptx",
    "timesheet-{y}-{mm}.xlsx",
    "proposal-{proj}.docx",
    "handbook-v{n}.pdf",
    "roadmap-{y}.pptx",
)
IMAGE_NAMES: tuple[str, ...] = (
    "IMG_{n:04d}.jpg",
    "photo-{y}-{mm}-{dd}.jpg",
    "screenshot-{n}.png",
    "logo.png",
    "diagram-{proj}.png",
    "scan-{n:03d}.tiff",
)
ARCHIVE_NAMES: tuple[str, ...] = (
    "backup-{y}-{mm}-{dd}.tar.gz",
    "db-dump-{y}{mm}{dd}.sql.gz",
    "{proj}-{n}.zip",
    "mail-archive-{y}.pst",
    "site-export-{y}{mm}.tar.zst",
)
# (category, weight, min bytes, max bytes): log-uniform sizes. Means come to ~50 KB a file,
# so 100,000 files hash in a few seconds and the default dataset stays in the tens of MB.
SIZE_CATEGORIES: tuple[tuple[str, float, int, int], ...] = (
    ("text", 0.45, 120, 32 * 1024),
    ("doc", 0.35, 4 * 1024, 128 * 1024),
    ("image", 0.185, 12 * 1024, 256 * 1024),
    ("archive", 0.015, 256 * 1024, 4 * 1024 * 1024),
)
NAMES_BY_CATEGORY: dict[str, tuple[str, ...]] = {
    "text": TEXT_NAMES,
    "doc": DOC_NAMES,
    "image": IMAGE_NAMES,
    "archive": ARCHIVE_NAMES,
}
PROJECTS: tuple[str, ...] = ("atlas", "borealis", "cobalt", "delta", "ember", "fjord", "granite", "helix")
MONTHS: tuple[str, ...] = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)

WINDOWS_USER_DIRS: tuple[str, ...] = ("Documents", "Desktop", "Downloads", "Pictures", "Documents\\Projects")
MAC_USER_DIRS: tuple[str, ...] = ("Documents", "Desktop", "Downloads", "Pictures", "Developer")
LINUX_USER_DIRS: tuple[str, ...] = ("documents", "projects/{proj}", "projects/{proj}/src", "Downloads", "notes")
WINDOWS_SERVER_DIRS: tuple[str, ...] = (
    "D:\\Shares\\{dept}",
    "D:\\Shares\\Public",
    "C:\\inetpub\\wwwroot",
    "E:\\Archive\\{y}",
)
LINUX_SERVER_DIRS: tuple[str, ...] = (
    "/srv/{proj}",
    "/var/backups",
    "/etc/{proj}",
    "/opt/{proj}/data",
    "/var/lib/{proj}",
)

CLIENT_ERRORS: tuple[str, ...] = (
    "VSS snapshot creation failed (0x8004230F)",
    "TLS handshake failed: certificate expired",
    "Disk full on client: 0 bytes free on the system volume",
    "Agent crashed: access denied while reading a locked file",
    "Connection reset by peer during transfer",
    "Agent version too old for the server's protocol",
)
# (level, logger, event, message pattern) for the emulated server log's background lines.
LOG_LINES: tuple[tuple[str, str, str, str], ...] = (
    ("DEBUG", "backup.scheduler", "scheduler.tick", "Scheduler woke up; {n} jobs due"),
    ("DEBUG", "backup.agent", "agent.heartbeat", "Heartbeat from {n} agents"),
    ("INFO", "backup.storage", "storage.compacted", "Compacted {n} storage segments"),
    ("WARNING", "backup.storage", "storage.latency_high", "Storage write latency high: {n} ms"),
    ("WARNING", "backup.agent", "agent.slow", "Agent throughput low: {n} KiB/s"),
    ("WARNING", "backup.tls", "tls.cert_expiring", "Server certificate expires in {n} days"),
    ("ERROR", "backup.storage", "storage.io_error", "I/O error on storage volume, retried {n} times"),
    ("ERROR", "backup.agent", "agent.protocol_error", "Malformed frame from an agent ({n} bytes)"),
)
