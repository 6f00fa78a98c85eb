"""`valence bench`: how close the streaming worker gets to the model's own limit.

- `workload`: the realistic text-length mix and simulated editing sessions (seeded).
- `model_only`: the ceiling, the scorer alone on batches the batch policy would form.
- `pipeline`: producer -> topic -> `valence worker` child process -> output topic, at
  fixed offered loads and at saturation; latency read from the output events.
- `naive`: the floor, a plain aiokafka consumer scoring one event per model call.
- `runner`: one run of all of them against the local broker; `report`: JSON, Markdown, PNG.
"""
