"""The Live view: a camera or a video classified as it plays (``gui.live.window.LiveWindow``)."""
