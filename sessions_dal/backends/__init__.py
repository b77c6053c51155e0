"""Storage backends: one package per database, each owning all of its SQL.

A backend provides a store (see :mod:`sessions_dal._store`, the contract):
its connection or pool, its statements, its transactions and locks, its
migrations runner and schema file, the adoption of openai-agents' tables, and
the translation of its driver's errors into :mod:`sessions_dal.errors`.

- :mod:`sessions_dal.backends.sqlite`: a file (or ``:memory:``), standard
  library only; the default.

A second backend goes in a package beside it and needs no change to the
public layer but the dispatch in ``SessionRepository``.
"""
