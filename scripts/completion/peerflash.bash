# bash completion for peerflash (installed as
# share/bash-completion/completions/peerflash by cmake --install).
# Commands, targets and options are read from peerflash's own --help, so the
# drivers' options and new commands complete without editing this file.
_peerflash() {
    local cur prev cmd pf
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD-1]}
    cmd=${COMP_WORDS[1]}
    pf=${COMP_WORDS[0]}
    local commands targets
    commands=$("$pf" --help 2>/dev/null | sed -n '/^commands:/,/^$/s/^  \([a-z0-9-]*\) .*/\1/p')
    if [[ $COMP_CWORD -eq 1 ]]; then
        COMPREPLY=($(compgen -W "$commands help --help --version -V" -- "$cur"))
        return
    fi
    case $prev in
        --target)
            targets=$("$pf" --help 2>/dev/null | sed -n 's/^targets (--target): //p')
            COMPREPLY=($(compgen -W "$targets auto" -- "$cur")); return ;;
        --port) COMPREPLY=($(compgen -W "$(ls /dev/ttyUSB* /dev/ttyACM* 2>/dev/null) tcp:// rfc2217:// tcp-listen://" -- "$cur")
                           $(compgen -f -- "$cur")); return ;;
        --erase) COMPREPLY=($(compgen -W "touched all" -- "$cur")); return ;;
        --baud|--connect-baud) COMPREPLY=($(compgen -W "9600 57600 115200 230400 460800 921600 1500000 2000000" -- "$cur")); return ;;
        --key|--flash|--bootloader|--flash-dump|-o|--pub|--stats|--manifest|--cacert|--delta-from|--token-file)
            COMPREPLY=($(compgen -f -- "$cur")); return ;;
    esac
    case $cmd in
        help) COMPREPLY=($(compgen -W "$commands" -- "$cur")) ;;
        sim) if [[ $COMP_CWORD -eq 2 ]]; then
                 COMPREPLY=($(compgen -W "$("$pf" sim --help 2>/dev/null | sed -n '/^simulators:/,/^$/s/^  \([a-z0-9]*\) .*/\1/p')" -- "$cur"))
             else
                 COMPREPLY=($(compgen -W "$("$pf" sim "${COMP_WORDS[2]}" --help 2>&1 | grep -o -- '--[a-z0-9-]*' | sort -u)" -- "$cur"))
             fi ;;
        *)
            if [[ $cur == -* ]]; then
                COMPREPLY=($(compgen -W "$("$pf" "$cmd" --help 2>&1 | grep -o -- '--[a-z0-9-]*' | sort -u)" -- "$cur"))
            else
                COMPREPLY=($(compgen -f -- "$cur"))
            fi ;;
    esac
}
complete -F _peerflash peerflash
