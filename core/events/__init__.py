from core.events.bus import Event, EventBus, InProcessEventBus, Subscription
from core.events.outbox import bind_outbox, stage

__all__ = ["Event", "EventBus", "InProcessEventBus", "Subscription", "bind_outbox", "stage"]
