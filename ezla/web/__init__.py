"""The pages people use in a browser: server-rendered (Jinja), plain forms, no script, signed in
with a token held in an HttpOnly cookie (``session``). Polish first, English on a switch."""
