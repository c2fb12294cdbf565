"""SIP telephony: the trunk gateway (signalling) and the media relay (``dialer.sip.media``)."""
