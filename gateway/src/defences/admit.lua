-- Appended to gate.lua: the gate alone (the captcha image route, and the per-IP gate).
return gate()
