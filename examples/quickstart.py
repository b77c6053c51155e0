"""Add a session for a user to ./sessions.db and print that user's sessions.

Run it again and again: each run adds one session, and the listing grows.
"""

from __future__ import annotations

from sessions_dal import SessionRepository

with SessionRepository("sessions.db") as repo:
    number = repo.count_sessions("alice") + 1
    session = repo.create_session("alice", metadata={"title": f"Trip plan #{number}"})
    session.add_items(
        [
            {"role": "user", "content": "Find me a train from Paris to Rome."},
            {"role": "assistant", "content": "The overnight train leaves at 19:10."},
        ]
    )

    print(f"{repo.count_sessions('alice')} session(s) for alice in {repo.path}, newest first:")
    for s in repo.get_sessions("alice", limit=10):
        items = s.get_items()
        last = items[-1].get("content", "") if items and isinstance(items[-1], dict) else ""
        title = s.metadata.get("title", "(untitled)")  # a session may have no title
        print(f"  {s.created_at:%Y-%m-%d %H:%M:%S}  {title:<14}  "
              f"{len(items)} items  {s.session_id}  last: {last}")
