"""The digital channels: SMS and WhatsApp over Twilio, email over SMTP, each message on the timeline.

`twilio_messages` and `email_smtp` are the adapters (a port and a fake beside each), `delivery` the
pure rule for delivery statuses, `service` what reaches the timeline and in which case,
`continuation` the IVR's SMS/WhatsApp link sender, and `channels` what the composition root builds.
"""
