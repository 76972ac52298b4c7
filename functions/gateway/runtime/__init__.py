"""What the code runs on: settings, shared resource names, secrets, SnapStart hooks, async
invocation and the event bus."""
