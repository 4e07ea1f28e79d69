complete -c callrec-capture -l phone -d 'Record from this phone: auto (the first found), or VID:PID. Used when neither --audio nor --video is given. Phones are devices with a USB Audio Class interface, or whose VID:PID is listed in $CALLREC_PHONE_IDS (comma-separated)' -r
complete -c callrec-capture -l audio -d 'Audio source, FORMAT:SPEC (alsa:hw:1,0, pulse:default, lavfi:sine, file:PATH)' -r
complete -c callrec-capture -l video -d 'Video source, FORMAT:SPEC (v4l2:/dev/video0, lavfi:testsrc2, file:PATH)' -r
complete -c callrec-capture -s d -l duration -d 'Stop after this many seconds of media' -r
complete -c callrec-capture -s n -l number -d 'The other party\'s phone number' -r
complete -c callrec-capture -l device-number -d 'The phone\'s local device number (shown in the watermark and the figure 3C line)' -r
complete -c callrec-capture -l audio-codec -d 'How audio is stored' -r -f -a "opus\t'Opus at 32 kbit/s, 48 kHz (default): small, clear speech'
flac\t'FLAC: lossless'"
complete -c callrec-capture -l silence-db -d 'Flag audio whose peak stays below this level, in dBFS' -r
complete -c callrec-capture -s o -l output-dir -d 'Directory for the recording and its sidecar' -r -F
complete -c callrec-capture -l list -d 'List the phones attached by USB, with their audio, video and hook-switch devices'
complete -c callrec-capture -l on-hook -d 'Wait for the handset to be lifted, and stop when it is put down (needs a phone with a HID Telephony hook switch)'
complete -c callrec-capture -l realtime -d 'Read file: sources at their native rate, as a device delivers media (for tests and benchmarks)'
complete -c callrec-capture -l json -d 'Print JSON Lines: the record ({"type":"record",...}), or with --list one {"type":"phone",...} per phone'
complete -c callrec-capture -s h -l help -d 'Print help (see more with \'--help\')'
complete -c callrec-capture -s V -l version -d 'Print version'
