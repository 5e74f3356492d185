"""The built-in ground-truth maze: batched torch world (`core`), exploration policies, eval episodes."""
