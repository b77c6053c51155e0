"""Checked by mypy --strict in .ci/run, not run by pytest: the adapter is a ``Session``."""

from __future__ import annotations

from agents import Agent, Runner
from agents.memory import Session as AgentsProtocol

from sessions_dal import SessionRepository
from sessions_dal.agents import AgentsSession


def takes_a_session(session: AgentsProtocol) -> str:
    return session.session_id


async def runs_an_agent(repo: SessionRepository, agent: Agent[None]) -> object:
    memory = AgentsSession(repo.create_session("alice"))
    takes_a_session(memory)
    result = await Runner.run(agent, "hi", session=memory)
    return result.final_output
