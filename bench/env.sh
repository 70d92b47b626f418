# The settings the benchmark's servers run with (sourced by bench/run and bench/profile).
# The benchmark's sessions never chat, so by default every end would also be a make-good
# refund (a silent astrologer) that the peer does not have: measure End Session like for like.
export MAKE_GOOD_SILENT_ASTROLOGER=false
# The load client signs up, recharges and chats for thousands of people from one address.
export SIGNUP_LIMIT="1000000 per hour" RECHARGE_LIMIT="1000000 per hour"
export SESSION_REQUEST_LIMIT="1000000 per hour" MESSAGE_LIMIT="1000000 per hour"
export SOCKETS_PER_USER=1000
